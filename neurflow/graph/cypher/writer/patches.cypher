// The concept patches (shared by circuits, merged by image and box); the first thumbnail URI known stays.
UNWIND $rows AS r
MATCH (i:Image {sha256: r.image})
MERGE (p:Patch {key: r.key})
  ON CREATE SET p.image = r.image, p.box = r.box, p.scale = r.scale, p.thumbnailUri = r.thumbnailUri
  ON MATCH SET p.thumbnailUri = coalesce(p.thumbnailUri, r.thumbnailUri)
MERGE (p)-[:CROPPED_FROM]->(i)
