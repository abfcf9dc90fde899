// Search by image: the neuron groups nearest each query vector by cosine (the group_vector index, $candidates
// per query), kept when they belong to the model and their vectorLayer is the query's layer, in complete
// circuits; each group scored by its best query (an image crop). $queries: [{layer, crop, vector}].
// The index's cosine score is (1 + cos) / 2: score is the cosine itself, in [-1, 1].
UNWIND $queries AS q
CALL db.index.vector.queryNodes('group_vector', $candidates, q.vector) YIELD node, score
WITH node AS g, score, q
WHERE g.modelKey = $model AND g.vectorLayer = q.layer
MATCH (c:Circuit {id: g.circuitId})
WHERE c.complete
WITH c, g, score, q.crop AS crop ORDER BY score DESC
WITH c, g, collect([score, crop])[0] AS best
RETURN c.className AS class, c.classIndex AS index, c.id AS circuit, c.familyKey AS family, g.groupId AS group,
       g.layer AS layer, g.depth AS depth, g.influence AS influence, g.label AS label, 2 * best[0] - 1 AS score,
       toInteger(best[1]) AS crop
ORDER BY score DESC, index, group
LIMIT $limit
