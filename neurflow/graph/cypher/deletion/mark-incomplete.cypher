// First step of a deletion: queries stop seeing the circuit at once; returns its images' sha256.
MATCH (c:Circuit {id: $id}) SET c.complete = false
WITH c
OPTIONAL MATCH (c)-[:HAS_IMAGE]->(i:Image)
RETURN count(DISTINCT c) AS circuits, collect(DISTINCT i.sha256) AS images
