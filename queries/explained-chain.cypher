// name: explained-chain
// description: The explained chain of one class, from the lowest layer up to the class logit: the circuit's
//   strongest path (each group's downNext, set at ingestion), one row per group, low layer first, with the
//   group's LLM label, caption and common features (from `neurflow label`), and the feature evolution stored on
//   the FLOWS_TO edge up to the next group of the chain: how that higher group's feature forms from this one.
//   unparsed: the LLM's answer did not follow the answer form (raw text in labelRaw / evolutionRaw).
// param: class (string, required) class name, index or wnid
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id, to choose among several circuits of the class
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[:HAS_GROUP]->(top:NeuronGroup {depth: 0})
WITH c, top ORDER BY top.upScore * top.downScore DESC, top.groupId LIMIT 1
MATCH chain = (bottom:NeuronGroup) ((x:NeuronGroup)-[:FLOWS_TO]->(y:NeuronGroup) WHERE y.downNext = x.key)* (top)
WHERE bottom.downNext IS NULL
WITH c, nodes(chain) AS groups, relationships(chain) AS flows
UNWIND range(0, size(groups) - 1) AS i
WITH c, i, groups[i] AS g, CASE WHEN i < size(flows) THEN flows[i] END AS f,
     CASE WHEN i < size(flows) THEN groups[i + 1] END AS up
RETURN c.className AS class, i + 1 AS step, g.layer AS layer, g.depth AS depth, g.groupId AS group,
       g.label AS label, g.caption AS caption, g.commonFeatures AS commonFeatures,
       up.groupId AS upGroup, f.weight AS weight, f.evolutionCaption AS evolutionCaption,
       f.evolutionMatch AS evolutionMatch, g.labelRaw IS NOT NULL OR f.evolutionRaw IS NOT NULL AS unparsed,
       g.labelModel AS labelModel, g.labelPromptVersion AS labelPromptVersion,
       f.evolutionPromptVersion AS evolutionPromptVersion
ORDER BY step
