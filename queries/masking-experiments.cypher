// name: masking-experiments
// description: Masking experiments (`neurflow mask`), newest first: the groups or neurons masked (or retained),
//   the class's top-1 accuracy and mean probability change on its images, against as many random neurons
//   per layer (mean over the draws); ablation: masked neurons set to zero or to their mean. Experiments on
//   circuits that are incomplete or gone are left out.
// param: class (string, default null) class name, index or wnid; default: every class
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: mode (string, default null) mask or retain; default: both
// param: group (string, default null) only experiments that masked this group id (e.g. _blocks.15/g1)
// param: limit (int, default 20) experiments
MATCH (e:MaskingExperiment)-[:FOR_CLASS]->(cl:Class)
WHERE ($class IS NULL OR toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class)
  AND ($model IS NULL OR e.modelKey = $model OR e.modelName = $model)
  AND ($mode IS NULL OR e.mode = $mode)
  AND ($group IS NULL OR $group IN e.groupIds)
OPTIONAL MATCH (c:Circuit {id: e.circuitId})
WITH e, cl, c
WHERE e.circuitId IS NULL OR c.complete
RETURN e.id AS experiment, toString(e.createdAt) AS created, e.modelKey AS model, cl.name AS class,
       e.circuitId AS circuit, e.mode AS mode, coalesce(e.ablation, 'zero') AS ablation,
       e.groupIds AS groups, e.neuronCount AS neurons,
       e.images AS images, e.accuracyBefore AS accuracyBefore, e.accuracyAfter AS accuracyAfter,
       e.randomAccuracyAfterMean AS randomAccuracyAfter, e.meanProbChange AS probChange,
       e.randomProbChangeMean AS randomProbChange, e.meanLogitChange AS logitChange,
       e.randomLogitChangeMean AS randomLogitChange, e.randomDraws AS draws
ORDER BY e.createdAt DESC, e.id
LIMIT $limit
