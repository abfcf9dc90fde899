// The core vectors of the circuits $ids: the lists a circuit of graph model 1.7 carries, else (written before)
// its core links below the logit as [layer, channel, influence, weight].
MATCH (o:Circuit)
WHERE o.id IN $ids
RETURN o.id AS id, o.writeId AS writeId, o.layers AS layers, o.coreLayerIndex AS layerIndex,
       o.coreChannels AS channels, o.coreInfluences AS influences, o.coreWeights AS weights,
       CASE WHEN o.coreChannels IS NULL
            THEN [(o)-[b:HAS_CORE_NEURON]->(n:Neuron) WHERE b.depth > 0 | [b.layer, n.channel, b.influence, b.weight]]
       END AS links
