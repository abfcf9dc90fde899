// The number of neuron groups of a complete circuit (0: not in the graph, or its ingestion unfinished).
MATCH (c:Circuit {id: $id, complete: true})-[:HAS_GROUP]->(g:NeuronGroup)
RETURN count(g) AS n
