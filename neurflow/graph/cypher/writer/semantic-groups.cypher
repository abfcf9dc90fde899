// The semantic groups, each with its neuron, its neuron groups, the lower neurons contributing to it
// (r.in: [neuron key, weight, score]) and its patches (r.patches: [patch key, activation, rank]).
UNWIND $rows AS r
MATCH (n:Neuron {key: r.neuron})
CREATE (s:SemanticGroup {key: r.key, circuitId: $circuitId, sgKey: r.sgKey, layer: r.layer, channel: r.channel,
                         index: r.index, depth: r.depth, size: r.size})
CREATE (s)-[:OF_NEURON]->(n)
WITH s, r
CALL (s, r) {
  UNWIND r.groups AS key
  MATCH (g:NeuronGroup {key: key})
  CREATE (g)-[:HAS_SEMANTIC_GROUP]->(s)
}
CALL (s, r) {
  UNWIND r.in AS e
  MATCH (m:Neuron {key: e[0]})
  CREATE (m)-[:CONTRIBUTES_TO {weight: e[1], score: e[2], circuitId: $circuitId}]->(s)
}
CALL (s, r) {
  UNWIND r.patches AS x
  MATCH (p:Patch {key: x[0]})
  CREATE (p)-[:EXEMPLIFIES {activation: x[1], rank: x[2], circuitId: $circuitId}]->(s)
}
