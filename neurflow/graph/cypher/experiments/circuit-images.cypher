// The images D_c of a circuit: path and folder label.
MATCH (c:Circuit {id: $id})-[:HAS_IMAGE]->(i:Image)
RETURN i.path AS path, i.label AS label ORDER BY path
