// Patches (among $keys) that no semantic group uses any more; returns their images' sha256.
UNWIND $keys AS key
MATCH (p:Patch {key: key})
WHERE NOT (p)-[:EXEMPLIFIES]->()
OPTIONAL MATCH (p)-[:CROPPED_FROM]->(i:Image)
DETACH DELETE p
RETURN collect(DISTINCT i.sha256) AS images
