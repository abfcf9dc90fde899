// How many neuron groups of complete circuits carry a label (`neurflow label`): searches over labels answer
// nothing without them.
MATCH (c:Circuit {complete: true})-[:HAS_GROUP]->(g:NeuronGroup)
RETURN count(g) AS groups, count(g.label) AS labelled
