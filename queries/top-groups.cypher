// name: top-groups
// description: The most influential neuron groups of one class's circuit, per layer, with their member channels
//   and the thumbnail URIs of their strongest concept patches. Influence is the group's share of what the
//   circuit carries from the logit, summed over all paths, within its layer (NeuronGroup.influence, set at
//   ingestion; NeuronGroup.absoluteInfluence scales it by the layer's coverage, docs/coverage.md).
// param: class (string, required) class name, index or wnid
// param: limit (int, default 5) groups per layer
// param: thumbnails (int, default 4) thumbnail URIs per group, strongest patch first
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id, to choose among several circuits of the class
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
WITH c, g ORDER BY g.depth, g.influence DESC, g.groupId
WITH c, g.depth AS depth, collect(g)[..$limit] AS groups
UNWIND range(0, size(groups) - 1) AS i
WITH c, depth, i + 1 AS rank, groups[i] AS g
CALL (g) {
  MATCH (g)-[:HAS_SEMANTIC_GROUP]->(:SemanticGroup)<-[e:EXEMPLIFIES]-(p:Patch)
  WHERE e.rank < $thumbnails
  WITH p, max(e.activation) AS activation
  ORDER BY activation DESC, p.key
  LIMIT $thumbnails
  RETURN collect(p.thumbnailUri) AS thumbnails
}
RETURN c.className AS class, g.layer AS layer, depth, rank, g.groupId AS group, g.influence AS influence,
       g.size AS neurons,
       COLLECT { MATCH (g)-[:HAS_MEMBER]->(n:Neuron) RETURN n.channel ORDER BY n.channel } AS channels,
       thumbnails
ORDER BY depth, rank
