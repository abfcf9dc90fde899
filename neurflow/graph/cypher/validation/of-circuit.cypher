// The validation studies of one circuit, newest first, with the names of the layers they are linked to.
MATCH (v:ValidationStudy)-[:VALIDATES]->(c:Circuit {id: $circuitId})
WHERE $study IS NULL OR v.study = $study
OPTIONAL MATCH (v)-[:ON_LAYER]->(l:Layer)
WITH v, c, l ORDER BY l.depth
WITH v, c, collect(l.name) AS linkedLayers
RETURN v {.*, createdAt: toString(v.createdAt)} AS study, linkedLayers, c.complete AS complete
ORDER BY v.createdAt DESC, v.id
