// name: bias-paths
// description: For one class: the n strongest paths from the groups of a lower layer up to the class logit (the
//   strongest path of each start group), then the n strongest bottom-to-logit paths through "foreign" groups,
//   whose labelled concept patches come mostly (at least minForeign) from images labelled as another class,
//   and the n strongest through "context" groups, whose LLM label (`neurflow label`, caption prompt v2 on)
//   says they depict context or background rather than the object (depicts); label: the group's label.
//   Path strength: the top group's share of the logit times the FLOWS_TO shares along the path (|W|: an
//   inhibitory link ranks as an excitatory one; the sign is on FLOWS_TO.weight); each group's strongest path
//   up (upScore/upNext) and down (downScore/downNext) is computed at ingestion.
// param: class (string, required) class name, index or wnid
// param: n (int, default 5) paths of each kind
// param: minForeign (float, default 0.5) share of a group's labelled concept patches from other classes' images
// param: fromDepth (int, default null) depth of the start groups (0 = logit layer); default: the lowest layer
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id, to choose among several circuits of the class
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
CALL (c) {
  MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
  WHERE g.depth = coalesce($fromDepth, size(c.layers) - 1) AND g.upScore > 0
  WITH g ORDER BY g.upScore DESC, g.groupId LIMIT $n
  MATCH up = (g) ((a:NeuronGroup)-[:FLOWS_TO]->(b:NeuronGroup) WHERE a.upNext = b.key)* (top:NeuronGroup)
  WHERE top.upNext IS NULL
  RETURN 'strongest' AS kind, g.upScore AS strength, null AS via, null AS foreignShare, null AS depicts,
         null AS label, nodes(up) AS groups,
         relationships(up) AS flows, [up] AS paths
  UNION ALL
  MATCH (c)-[:HAS_GROUP]->(v:NeuronGroup)
  WHERE v.upScore * v.downScore > 0 AND (v.foreignShare >= $minForeign OR v.depicts IN ['context', 'background'])
  UNWIND [k IN ['foreign', 'context']
          WHERE (k = 'foreign' AND v.foreignShare >= $minForeign)
             OR (k = 'context' AND v.depicts IN ['context', 'background'])] AS kind
  WITH kind, v ORDER BY v.upScore * v.downScore DESC, v.groupId
  WITH kind, collect(v)[..$n] AS strongest
  UNWIND strongest AS v
  MATCH down = (bottom:NeuronGroup) ((x:NeuronGroup)-[:FLOWS_TO]->(y:NeuronGroup) WHERE y.downNext = x.key)* (v)
  WHERE bottom.downNext IS NULL
  MATCH up = (v) ((a:NeuronGroup)-[:FLOWS_TO]->(b:NeuronGroup) WHERE a.upNext = b.key)* (top:NeuronGroup)
  WHERE top.upNext IS NULL
  RETURN kind, v.upScore * v.downScore AS strength, v.groupId AS via, v.foreignShare AS foreignShare,
         v.depicts AS depicts, v.label AS label, nodes(down) + tail(nodes(up)) AS groups, relationships(down) + relationships(up) AS flows,
         [down, up] AS paths
}
RETURN kind, strength, [g IN groups | g.groupId] AS groups, [f IN flows | f.weight] AS weights, via, foreignShare,
       depicts, label, paths
ORDER BY kind DESC, strength DESC, groups
