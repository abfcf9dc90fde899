// The semantic groups, each with its neuron, its neuron groups, the lower neurons contributing to it
// (r.in: [neuron key, weight, score, weight interval low, high]) and its patches (r.patches: [patch key, activation,
// rank]). A semantic group and its relationships are created together, in one transaction: one found already was
// written by this very batch (a commit whose answer was lost, sent again), so only its relationships are counted.
// CREATE, not MERGE: merging a relationship first looks for it from both ends, and the patches and lower neurons
// are shared by every circuit (at 1,000 classes 0.66 M database hits for one circuit's 15 k relationships).
// `ensured` counts the relationships whose ends exist, 1 + groups + in + patches per row.
UNWIND $rows AS r
OPTIONAL MATCH (written:SemanticGroup {key: r.key})
CALL (r, written) {
  WITH r, written WHERE written IS NOT NULL
  RETURN COUNT { (written)-[:OF_NEURON]->() } + COUNT { ()-[:HAS_SEMANTIC_GROUP]->(written) }
         + COUNT { ()-[:CONTRIBUTES_TO]->(written) } + COUNT { ()-[:EXEMPLIFIES]->(written) } AS ensured
UNION
  WITH r, written WHERE written IS NULL
  MATCH (n:Neuron {key: r.neuron})
  CREATE (s:SemanticGroup {key: r.key, circuitId: $circuitId, sgKey: r.sgKey, layer: r.layer, channel: r.channel,
                           index: r.index, depth: r.depth, size: r.size, stability: r.stability})
  CREATE (s)-[:OF_NEURON]->(n)
  WITH s, r
  CALL (s, r) {
    UNWIND r.groups AS key
    MATCH (g:NeuronGroup {key: key})
    CREATE (g)-[:HAS_SEMANTIC_GROUP]->(s)
    RETURN count(g) AS groups
  }
  CALL (s, r) {
    UNWIND r.in AS e
    MATCH (m:Neuron {key: e[0]})
    CREATE (m)-[:CONTRIBUTES_TO {weight: e[1], score: e[2], weightLow: e[3], weightHigh: e[4],
                                 circuitId: $circuitId}]->(s)
    RETURN count(m) AS contributions
  }
  CALL (s, r) {
    UNWIND r.patches AS x
    MATCH (p:Patch {key: x[0]})
    CREATE (p)-[:EXEMPLIFIES {activation: x[1], rank: x[2], circuitId: $circuitId}]->(s)
    RETURN count(p) AS patches
  }
  RETURN 1 + groups + contributions + patches AS ensured
}
RETURN sum(ensured) AS ensured
