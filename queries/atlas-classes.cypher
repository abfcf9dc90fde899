// name: atlas-classes
// description: The atlas: every class with a complete circuit, one row per class and family (the newest circuit
//   of each), ordered by model, family and class index; what `neurflow serve` lists on its first page.
//   images, groups: the circuit's images and neuron groups; coverage: the share of the logit's attribution that
//   reaches the bottom layer through core paths (docs/coverage.md).
// param: search (string, default null) part of a class name (case-insensitive) or a class index; default: all
// param: model (string, default null) model name or key (name@weightsId); default: every model
// param: circuit (string, default null) only this circuit (by id); default: every class's newest
// param: limit (int, default 2000) rows
MATCH (c:Circuit {complete: true})
WHERE ($circuit IS NULL OR c.id = $circuit) AND ($model IS NULL OR c.modelKey = $model OR c.modelName = $model)
  AND ($search IS NULL OR toLower(c.className) CONTAINS toLower($search) OR toString(c.classIndex) = $search)
WITH c ORDER BY c.ingestedAt DESC, c.id
WITH c.familyKey AS family, c.classIndex AS index, collect(c)[0] AS c
RETURN c.modelKey AS model, family, c.className AS class, index, c.id AS circuit, c.images AS images,
       c.neuronGroups AS groups, c.coverage AS coverage
ORDER BY model, family, index
LIMIT $limit
