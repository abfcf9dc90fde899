// The one DataModel node: created with this neurflow's graph model version and thresholds (OVERLAPS edges; the
// reuse summaries, 1.7: added to a graph created before), else read.
MERGE (d:DataModel {name: $name})
ON CREATE SET d.version = $version, d.createdAt = datetime(), d.overlapMinJaccard = $overlap,
  d.reuseMinJaccard = $reuse
ON MATCH SET d.reuseMinJaccard = coalesce(d.reuseMinJaccard, $reuse)
RETURN d.version AS version
