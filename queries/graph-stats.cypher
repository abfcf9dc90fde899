// name: graph-stats
// description: Nodes per label and relationships per type (from the count store: instant at any size), and
//   the number of complete and incomplete circuits. Counts include the parts of incomplete circuits, which
//   the other queries never see. kind "family": each family of comparable circuits (key, model, parameters)
//   with its number of complete circuits; cross-class queries take its key as --param family.
MATCH (n:DataModel) WITH count(n) AS count RETURN 'label' AS kind, 'DataModel' AS name, count
UNION ALL
MATCH (n:Model) WITH count(n) AS count RETURN 'label' AS kind, 'Model' AS name, count
UNION ALL
MATCH (n:Layer) WITH count(n) AS count RETURN 'label' AS kind, 'Layer' AS name, count
UNION ALL
MATCH (n:Neuron) WITH count(n) AS count RETURN 'label' AS kind, 'Neuron' AS name, count
UNION ALL
MATCH (n:Class) WITH count(n) AS count RETURN 'label' AS kind, 'Class' AS name, count
UNION ALL
MATCH (n:Circuit) WITH count(n) AS count RETURN 'label' AS kind, 'Circuit' AS name, count
UNION ALL
MATCH (n:SemanticGroup) WITH count(n) AS count RETURN 'label' AS kind, 'SemanticGroup' AS name, count
UNION ALL
MATCH (n:NeuronGroup) WITH count(n) AS count RETURN 'label' AS kind, 'NeuronGroup' AS name, count
UNION ALL
MATCH (n:Patch) WITH count(n) AS count RETURN 'label' AS kind, 'Patch' AS name, count
UNION ALL
MATCH (n:Image) WITH count(n) AS count RETURN 'label' AS kind, 'Image' AS name, count
UNION ALL
MATCH (n:CircuitFamily) WITH count(n) AS count RETURN 'label' AS kind, 'CircuitFamily' AS name, count
UNION ALL
MATCH ()-[r:IN_FAMILY]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'IN_FAMILY' AS name, count
UNION ALL
MATCH ()-[r:FAMILY_INFLUENCE]->() WITH count(r) AS count
RETURN 'relationship' AS kind, 'FAMILY_INFLUENCE' AS name, count
UNION ALL
MATCH ()-[r:SIMILAR_TO]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'SIMILAR_TO' AS name, count
UNION ALL
MATCH ()-[r:HAS_LAYER]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'HAS_LAYER' AS name, count
UNION ALL
MATCH ()-[r:HAS_NEURON]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'HAS_NEURON' AS name, count
UNION ALL
MATCH ()-[r:OF_MODEL]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'OF_MODEL' AS name, count
UNION ALL
MATCH ()-[r:FOR_CLASS]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'FOR_CLASS' AS name, count
UNION ALL
MATCH ()-[r:HAS_LOGIT]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'HAS_LOGIT' AS name, count
UNION ALL
MATCH ()-[r:HAS_CORE_NEURON]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'HAS_CORE_NEURON' AS name, count
UNION ALL
MATCH ()-[r:HAS_IMAGE]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'HAS_IMAGE' AS name, count
UNION ALL
MATCH ()-[r:HAS_GROUP]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'HAS_GROUP' AS name, count
UNION ALL
MATCH ()-[r:HAS_SEMANTIC_GROUP]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'HAS_SEMANTIC_GROUP' AS name, count
UNION ALL
MATCH ()-[r:OF_NEURON]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'OF_NEURON' AS name, count
UNION ALL
MATCH ()-[r:HAS_MEMBER]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'HAS_MEMBER' AS name, count
UNION ALL
MATCH ()-[r:CONTRIBUTES_TO]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'CONTRIBUTES_TO' AS name, count
UNION ALL
MATCH ()-[r:FLOWS_TO]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'FLOWS_TO' AS name, count
UNION ALL
MATCH ()-[r:OVERLAPS]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'OVERLAPS' AS name, count
UNION ALL
MATCH ()-[r:EXEMPLIFIES]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'EXEMPLIFIES' AS name, count
UNION ALL
MATCH ()-[r:CROPPED_FROM]->() WITH count(r) AS count RETURN 'relationship' AS kind, 'CROPPED_FROM' AS name, count
UNION ALL
MATCH (c:Circuit) WHERE c.complete WITH count(c) AS count RETURN 'circuits' AS kind, 'complete' AS name, count
UNION ALL
MATCH (c:Circuit) WHERE NOT c.complete WITH count(c) AS count RETURN 'circuits' AS kind, 'incomplete' AS name, count
UNION ALL
// families of comparable circuits (same model, weights and build parameters): the keys --param family takes
MATCH (f:CircuitFamily)<-[:IN_FAMILY]-(c:Circuit)
WHERE c.complete
WITH f, count(c) AS count
RETURN 'family' AS kind, f.key + ' ' + f.modelKey + ' ' + f.paramsJson AS name, count
