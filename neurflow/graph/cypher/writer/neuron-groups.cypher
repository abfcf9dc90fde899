// The circuit's neuron groups, every property from the row.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
CREATE (g:NeuronGroup) SET g = r
CREATE (c)-[:HAS_GROUP]->(g)
