// The vectors of the circuits $ids (neurflow.graph.circuit_vectors): the lists a circuit of graph model 1.7
// carries, else (written before) its core links below the logit as [layer, channel, influence, weight] and its
// groups below the logit as [group id, influence, size, [[layer, channel] of each member]].
MATCH (o:Circuit)
WHERE o.id IN $ids
RETURN o.id AS id, o.layers AS layers,
       o {.writeId, .familyKey, .classIndex, .coreLayerIndex, .coreChannels, .coreInfluences, .coreWeights, .groupIds,
          .groupInfluences, .groupSizes, .groupMembers} AS props,
       CASE WHEN o.groupMembers IS NULL
            THEN [(o)-[b:HAS_CORE_NEURON]->(n:Neuron) WHERE b.depth > 0 | [b.layer, n.channel, b.influence, b.weight]]
       END AS core,
       CASE WHEN o.groupMembers IS NULL
            THEN [(o)-[:HAS_GROUP]->(g:NeuronGroup) WHERE g.depth > 0 |
                  [g.groupId, g.influence, g.size, [(g)-[:HAS_MEMBER]->(m:Neuron) | [m.layer, m.channel]]]]
       END AS groups
