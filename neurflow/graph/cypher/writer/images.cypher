// The circuit's images (shared by circuits, merged by sha256), with this circuit's prediction on each.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MERGE (i:Image {sha256: r.sha256})
  ON CREATE SET i.path = r.path, i.label = r.label, i.width = r.width, i.height = r.height
CREATE (c)-[:HAS_IMAGE {predicted: r.predicted, logit: r.logit}]->(i)
