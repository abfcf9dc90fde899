// The circuit's neuron groups, every property from the row. Merged by key (idempotent); `ensured` counts
// the rows.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MERGE (g:NeuronGroup {key: r.key})
SET g += r
MERGE (c)-[h:HAS_GROUP]->(g)
RETURN count(h) AS ensured
