// name: circuit-view
// description: One circuit as a layered graph, for a viewer (`neurflow serve`'s class page): a row per neuron
//   group that prune keeps (kind 'group': id, layer, depth, influence, signedInfluence, label, neurons and the
//   keys of its strongest patches, Patch.key) and a row per FLOWS_TO edge between kept groups (kind 'edge': from
//   the lower group to the upper one, weight (signed: negative inhibits), share of the upper group's |W|,
//   influence carried). prune: per layer, the groups carrying that share of the influence, and the edges
//   carrying that share of what leaves each layer (as `neurflow draw --prune`); 1 keeps everything.
// param: circuit (string, required) circuit id
// param: prune (float, default 0.8) share of each layer's influence to keep, in (0, 1]
// param: thumbnails (int, default 3) patches per group, strongest first
MATCH (c:Circuit {id: $circuit})
CALL (c) {
  MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
  WHERE g.influenceBefore < $prune
  CALL (g) {
    MATCH (g)-[:HAS_SEMANTIC_GROUP]->(:SemanticGroup)<-[e:EXEMPLIFIES]-(p:Patch)
    WHERE e.rank < $thumbnails
    WITH p, max(e.activation) AS activation
    ORDER BY activation DESC, p.key
    LIMIT $thumbnails
    RETURN collect(p.key) AS patches
  }
  RETURN 'group' AS kind, g.groupId AS id, g.layer AS layer, g.depth AS depth, g.influence AS influence,
         g.signedInfluence AS signedInfluence, g.label AS label, g.size AS neurons, patches,
         null AS source, null AS target, null AS weight, null AS share
  UNION ALL
  MATCH (c)-[:HAS_GROUP]->(a:NeuronGroup)-[f:FLOWS_TO]->(b:NeuronGroup)
  WHERE f.influenceBefore < $prune AND a.influenceBefore < $prune AND b.influenceBefore < $prune
  RETURN 'edge' AS kind, a.groupId + '>' + b.groupId AS id, a.layer AS layer, a.depth AS depth,
         f.influence AS influence, null AS signedInfluence, null AS label, null AS neurons, [] AS patches,
         a.groupId AS source, b.groupId AS target, f.weight AS weight, f.share AS share
}
RETURN kind, id, layer, depth, influence, signedInfluence, label, neurons, patches, source, target, weight, share
ORDER BY kind DESC, depth, influence DESC, id
