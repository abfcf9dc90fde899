// The keys of a circuit's core neurons (every layer), whatever its state.
MATCH (c:Circuit {id: $id})-[:HAS_CORE_NEURON]->(n:Neuron)
RETURN collect(n.key) AS keys
