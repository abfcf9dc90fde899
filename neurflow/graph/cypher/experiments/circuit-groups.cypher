// The neuron groups of a circuit with their member channels (sorted), logit layer first.
MATCH (c:Circuit {id: $id})-[:HAS_GROUP]->(g:NeuronGroup)
OPTIONAL MATCH (g)-[:HAS_MEMBER]->(n:Neuron)
WITH g, n ORDER BY n.channel
RETURN g.key AS key, g.groupId AS groupId, g.layer AS layer, g.depth AS depth,
       collect(n.channel) AS channels
ORDER BY depth, groupId
