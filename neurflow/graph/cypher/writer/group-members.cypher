// Member neurons of the neuron groups: rows [group key, neuron key, influence the group carries through it].
UNWIND $rows AS r
MATCH (g:NeuronGroup {key: r[0]})
MATCH (n:Neuron {key: r[1]})
CREATE (g)-[:HAS_MEMBER {influence: r[2]}]->(n)
