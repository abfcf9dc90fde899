// Classes with a complete circuit of a model (name or key), for error messages.
MATCH (c:Circuit {complete: true})
WHERE c.modelKey = $model OR c.modelName = $model
RETURN DISTINCT c.className AS name ORDER BY name LIMIT 30
