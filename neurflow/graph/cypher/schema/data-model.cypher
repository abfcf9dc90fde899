// The one DataModel node: created with this neurflow's graph model version and OVERLAPS threshold, else read.
MERGE (d:DataModel {name: $name})
ON CREATE SET d.version = $version, d.createdAt = datetime(), d.overlapMinJaccard = $overlap
RETURN d.version AS version
