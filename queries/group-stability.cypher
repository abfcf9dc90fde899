// name: group-stability
// description: How sure a class circuit is of its neuron groups (docs/coverage.md), from the bootstrap over its
//   images done at build time: per group below the logit, stability (the mean over resamples of its best
//   Jaccard match: 1 = it comes back whole; above 0.75 stable, below 0.5 dissolved), layerAri (the whole
//   layer's grouping against the resampled ones, adjusted Rand index), its influence, and its members' selection
//   frequency (the share of resamples in which a member stays in the core set of the target that chose it most:
//   the lowest and the mean over members). minStability=0.9 keeps the groups stable in at least 90 % of
//   resamples. Nulls: circuits built without the bootstrap (--stability-resamples 0, or before it existed).
// param: class (string, required) class name, index or wnid
// param: minStability (float, default 0.0) only groups at least this stable (0: every group, nulls too)
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id, to choose among several circuits of the class
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
WHERE g.depth > 0 AND ($minStability <= 0.0 OR g.stability >= $minStability)
WITH c, g, COLLECT { MATCH (g)-[:HAS_MEMBER]->(n:Neuron)<-[x:HAS_CORE_NEURON]-(c)
                     WHERE x.selectionFrequency IS NOT NULL RETURN x.selectionFrequency } AS frequencies
RETURN c.className AS class, c.id AS circuit, g.layer AS layer, g.depth AS depth, g.groupId AS group,
       g.stability AS stability,
       CASE WHEN c.groupingStability IS NULL THEN null ELSE c.groupingStability[g.depth - 1] END AS layerAri,
       g.influence AS influence, g.size AS neurons,
       CASE WHEN size(frequencies) = 0 THEN null
            ELSE reduce(low = 1.0, f IN frequencies | CASE WHEN f < low THEN f ELSE low END) END AS minSelection,
       CASE WHEN size(frequencies) = 0 THEN null
            ELSE reduce(total = 0.0, f IN frequencies | total + f) / size(frequencies) END AS meanSelection
ORDER BY depth, stability DESC, group
