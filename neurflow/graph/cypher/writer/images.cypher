// The circuit's images (shared by circuits, merged by sha256), with this circuit's prediction on each.
// Merged (idempotent); `ensured` counts the rows.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MERGE (i:Image {sha256: r.sha256})
  ON CREATE SET i.path = r.path, i.label = r.label, i.width = r.width, i.height = r.height
MERGE (c)-[h:HAS_IMAGE]->(i)
SET h.predicted = r.predicted, h.logit = r.logit
RETURN count(h) AS ensured
