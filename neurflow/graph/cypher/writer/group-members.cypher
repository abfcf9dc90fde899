// Member neurons of the neuron groups: rows [group key, neuron key, influence the group carries through it].
// Merged (idempotent); `ensured` counts the rows whose group and neuron exist.
UNWIND $rows AS r
MATCH (g:NeuronGroup {key: r[0]})
MATCH (n:Neuron {key: r[1]})
MERGE (g)-[m:HAS_MEMBER]->(n)
SET m.influence = r[2]
RETURN count(m) AS ensured
