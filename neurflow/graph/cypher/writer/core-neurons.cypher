// The circuit's core neurons, with their depth, incoming weight, influence and activation. Merged, so a batch
// run twice (a retried commit) leaves one relationship each; `ensured` counts the rows whose neuron exists.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MATCH (n:Neuron {key: r.neuron})
MERGE (c)-[x:HAS_CORE_NEURON]->(n)
SET x += {layer: r.layer, depth: r.depth, weight: r.weight, influence: r.influence,
          influenceBefore: r.influenceBefore, influenceLabel: r.influenceLabel, maxActivation: r.maxActivation,
          parents: r.parents, circuitId: $circuitId}
RETURN count(x) AS ensured
