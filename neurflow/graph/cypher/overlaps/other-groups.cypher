// Neuron groups below the logit layer of the complete circuits of other classes of the model, with their
// member neuron keys: the candidates for OVERLAPS edges.
MATCH (c:Circuit {complete: true})
WHERE c.modelKey = $model AND c.classIndex <> $classIndex
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
WHERE g.depth > 0
RETURN g.key AS key, g.layer AS layer, [(g)-[:HAS_MEMBER]->(n:Neuron) | n.key] AS members
