// The circuit's core neurons, with their depth, incoming weight, influence and activation.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MATCH (n:Neuron {key: r.neuron})
CREATE (c)-[:HAS_CORE_NEURON {layer: r.layer, depth: r.depth, weight: r.weight, influence: r.influence,
                              influenceBefore: r.influenceBefore,
                              influenceLabel: r.influenceLabel, maxActivation: r.maxActivation,
                              parents: r.parents, circuitId: $circuitId}]->(n)
