// The semantic groups, each with its neuron, its neuron groups, the lower neurons contributing to it
// (r.in: [neuron key, weight, score, weight interval low, high]) and its patches (r.patches: [patch key, activation, rank]).
// Merged by key (idempotent: a batch run twice leaves one of each); `ensured` counts the relationships
// whose ends exist, 1 + groups + in + patches per row.
UNWIND $rows AS r
MATCH (n:Neuron {key: r.neuron})
MERGE (s:SemanticGroup {key: r.key})
SET s += {circuitId: $circuitId, sgKey: r.sgKey, layer: r.layer, channel: r.channel, index: r.index,
          depth: r.depth, size: r.size, stability: r.stability}
MERGE (s)-[:OF_NEURON]->(n)
WITH s, r
CALL (s, r) {
  UNWIND r.groups AS key
  MATCH (g:NeuronGroup {key: key})
  MERGE (g)-[:HAS_SEMANTIC_GROUP]->(s)
  RETURN count(g) AS groups
}
CALL (s, r) {
  UNWIND r.in AS e
  MATCH (m:Neuron {key: e[0]})
  MERGE (m)-[x:CONTRIBUTES_TO]->(s)
  SET x.weight = e[1], x.score = e[2], x.weightLow = e[3], x.weightHigh = e[4], x.circuitId = $circuitId
  RETURN count(m) AS contributions
}
CALL (s, r) {
  UNWIND r.patches AS x
  MATCH (p:Patch {key: x[0]})
  MERGE (p)-[y:EXEMPLIFIES]->(s)
  SET y.activation = x[1], y.rank = x[2], y.circuitId = $circuitId
  RETURN count(p) AS patches
}
RETURN sum(1 + groups + contributions + patches) AS ensured
