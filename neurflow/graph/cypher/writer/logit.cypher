// The circuit's logit neuron.
MATCH (c:Circuit {id: $circuitId})
MATCH (n:Neuron {key: $logit})
CREATE (c)-[:HAS_LOGIT]->(n)
