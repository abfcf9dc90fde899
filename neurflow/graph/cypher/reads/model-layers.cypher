// The layers of a model's complete circuits that hold searchable group vectors (vectorLayer), and how many groups.
MATCH (c:Circuit {complete: true})
WHERE c.modelKey = $model
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
WHERE g.vectorLayer IS NOT NULL
RETURN g.vectorLayer AS layer, count(g) AS groups
ORDER BY layer
