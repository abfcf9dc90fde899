// The sha256 of a circuit's images (to find what its deletion leaves unused).
MATCH (c:Circuit {id: $id})-[:HAS_IMAGE]->(i:Image)
RETURN collect(DISTINCT i.sha256) AS images
