// The circuit's logit neuron: rows [neuron key] (one). Merged (idempotent); `ensured` counts it when it exists.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS key
MATCH (n:Neuron {key: key})
MERGE (c)-[h:HAS_LOGIT]->(n)
RETURN count(h) AS ensured
