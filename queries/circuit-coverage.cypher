// name: circuit-coverage
// description: How much of the class decision a circuit accounts for, layer by layer (docs/coverage.md). reach:
//   the share of the class logit's attribution that reaches the layer through core paths (1 at the logit; the
//   lowest layer's reach is the circuit's coverage, Circuit.coverage). For the layers below the logit, over the
//   targets (the core neurons of the layer above): meanCoreShare and minCoreShare, the share of a target's
//   |attribution| its core set in this layer carries; meanSignedShare, the share of its output change the core
//   set accounts for with signs kept (inhibitory core neurons lower it); maxCompletenessGap, how far the
//   integration was from exact. Nulls: circuits built before neurflow recorded coverage.
// param: class (string, default null) class name, index or wnid; default: every class
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id, to choose among several circuits of the class
// param: limit (int, default 20) circuits (the newest of each class and family, by class index)
MATCH (c:Circuit {complete: true})
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
  AND ($class IS NULL OR toString(c.classIndex) = $class OR toLower(c.className) = toLower($class)
       OR EXISTS { (c)-[:FOR_CLASS]->(:Class {wnid: $class}) })
WITH c ORDER BY c.ingestedAt DESC, c.id
WITH c.classIndex AS classIndex, c.familyKey AS family, collect(c)[0] AS c
WITH c ORDER BY c.classIndex, c.modelKey, c.id LIMIT $limit
UNWIND range(0, size(c.layers) - 1) AS depth
OPTIONAL MATCH (c)-[t:HAS_CORE_NEURON]->(:Neuron)
  WHERE t.depth = depth - 1 AND t.coreShare IS NOT NULL
WITH c, depth, count(t) AS targets, avg(t.coreShare) AS meanCoreShare, min(t.coreShare) AS minCoreShare,
     avg(CASE WHEN isNaN(t.signedShare) THEN null ELSE t.signedShare END) AS meanSignedShare,
     max(CASE WHEN isNaN(t.completenessGap) THEN null ELSE t.completenessGap END) AS maxCompletenessGap
RETURN c.className AS class, c.modelName AS model, c.id AS circuit, c.layers[depth] AS layer, depth,
       COUNT { (c)-[x:HAS_CORE_NEURON]->(:Neuron) WHERE x.depth = depth } AS coreNeurons,
       CASE WHEN c.layerReach IS NULL THEN null ELSE c.layerReach[depth] END AS reach,
       CASE WHEN depth = 0 THEN null ELSE targets END AS targets, meanCoreShare, minCoreShare, meanSignedShare,
       maxCompletenessGap
ORDER BY c.classIndex, model, circuit, depth
