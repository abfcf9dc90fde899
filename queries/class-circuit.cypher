// name: class-circuit
// description: The group-level circuit of one class, for display in Neo4j Browser: one row per path, first the
//   class, circuit, logit neuron and top group, then every FLOWS_TO edge (lower group -> upper group) that
//   carries at least minShare of its upper group's attribution. With prune, the pruned view instead: per layer
//   the groups that carry that share of the influence, and the edges among the strongest that carry that
//   share of what leaves each layer (the view `neurflow draw --prune` draws). influence: what the edge carries.
// param: class (string, required) class name, index or wnid
// param: minShare (float, default 0.1) smallest share of an upper group's |W| an edge must carry to be shown
// param: prune (float, default null) share of each layer's influence to keep (e.g. 0.8); replaces minShare
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id, to choose among several circuits of the class
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
CALL (c) {
  MATCH path = (:Class)<-[:FOR_CLASS]-(c)-[:HAS_LOGIT]->(n:Neuron)<-[:HAS_MEMBER]-(g:NeuronGroup)
  WHERE g.circuitId = c.id AND ($prune IS NULL OR g.influenceBefore < $prune)
  RETURN 'logit' AS kind, g.depth AS depth, g.groupId AS fromGroup, n.layer + ':' + n.channel AS toGroup,
         null AS weight, null AS share, g.influence AS influence, path
  UNION ALL
  MATCH (c)-[:HAS_GROUP]->(a:NeuronGroup)
  MATCH path = (a)-[f:FLOWS_TO]->(b:NeuronGroup)
  WHERE CASE WHEN $prune IS NULL THEN f.share >= $minShare
             ELSE f.influenceBefore < $prune AND a.influenceBefore < $prune AND b.influenceBefore < $prune END
  RETURN 'flow' AS kind, a.depth AS depth, a.groupId AS fromGroup, b.groupId AS toGroup, f.weight AS weight,
         f.share AS share, f.influence AS influence, path
}
RETURN kind, fromGroup, toGroup, weight, share, influence, path
ORDER BY kind DESC, depth, share DESC, fromGroup, toGroup
