// name: neuron-classes
// description: The classes one neuron serves, and how much: one row per class circuit that has it as a core
//   neuron (complete circuits, the newest per class and family), ranked by influence (the neuron's share of what
//   the class circuit carries from the logit, within its layer), with its specificity (that influence over the family's total on
//   the neuron: 1 = only this class uses it), its depth, the number of the family's classes using it (classCount), and the
//   circuit's groups containing it with what each carries through it (groups and groupInfluence, in the same
//   order, largest first). Circuits of other model weights or build parameters are other families: every
//   family of every model that has the neuron is listed, each row with its model key and family key, unless
//   model or family narrows it. An unknown or malformed neuron gives no rows.
// param: neuron (string, required) the neuron as layer:channel, e.g. _blocks.15:201
// param: model (string, default null) model name or key (name@weightsId); default: every model with that neuron
// param: family (string, default null) family key (Circuit.familyKey); default: every family that has the neuron
// param: limit (int, default 20) rows
WITH split($neuron, ':') AS parts
WITH parts WHERE size(parts) > 1
WITH toInteger(last(parts)) AS channel, substring($neuron, 0, size($neuron) - size(last(parts)) - 1) AS layer
MATCH (n:Neuron)
WHERE n.layer = layer AND n.channel = channel
MATCH (f:CircuitFamily)-[t:FAMILY_INFLUENCE]->(n)
WHERE $family IS NULL OR f.key = $family
MATCH (n)<-[r:HAS_CORE_NEURON]-(c:Circuit)
WHERE c.complete AND c.familyKey = f.key AND ($model IS NULL OR c.modelKey = $model OR c.modelName = $model)
WITH n, f, t, c.classIndex AS index, c, r ORDER BY c.ingestedAt DESC, c.id
WITH n, f, t, index, collect({c: c, r: r})[0] AS newest
WITH n, f, t, newest.c AS c, newest.r AS r
ORDER BY r.influence DESC, f.key, c.classIndex
LIMIT $limit
CALL (n, c) {
  OPTIONAL MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)-[m:HAS_MEMBER]->(n)
  WHERE g.layer = n.layer
  WITH g, m ORDER BY m.influence DESC, g.groupId
  RETURN collect(g.groupId) AS groups, collect(m.influence) AS groupInfluence
}
RETURN c.modelKey AS model, f.key AS family, c.className AS class, c.classIndex AS index, c.id AS circuit,
       n.layer + ':' + n.channel AS neuron, r.depth AS depth, r.influence AS influence,
       CASE WHEN t.influence > 0 THEN r.influence / t.influence ELSE 0.0 END AS specificity,
       t.classes AS classCount, groups, groupInfluence
ORDER BY influence DESC, family, index
