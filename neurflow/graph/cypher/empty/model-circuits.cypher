// Whether the graph holds a complete circuit of a model (name or key), and the models it does hold: why a query
// restricted to a model may answer nothing.
OPTIONAL MATCH (c:Circuit {complete: true})
WITH c.modelName AS name, c.modelKey AS key, count(c) AS circuits
WHERE name IS NOT NULL
RETURN collect(DISTINCT name) AS names, sum(CASE WHEN name = $model OR key = $model THEN circuits ELSE 0 END) AS found
