// The core neurons of a circuit per layer (channels sorted), logit layer first.
MATCH (c:Circuit {id: $id})-[r:HAS_CORE_NEURON]->(n:Neuron)
WITH r.depth AS depth, n.layer AS layer, n.channel AS channel ORDER BY depth, channel
RETURN depth, layer, collect(channel) AS channels ORDER BY depth
