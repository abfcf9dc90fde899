// A MaskingExperiment linked to its model and class (merged), its circuit (when it is in the graph) and the
// neuron groups it masked (by key); returns how many groups it linked.
MERGE (m:Model {key: $model.key}) ON CREATE SET m += $model
MERGE (cl:Class {index: $target.index}) ON CREATE SET cl += $target
CREATE (e:MaskingExperiment) SET e = $props, e.createdAt = datetime()
CREATE (e)-[:OF_MODEL]->(m)
CREATE (e)-[:FOR_CLASS]->(cl)
WITH e
OPTIONAL MATCH (c:Circuit {id: $circuitId})
FOREACH (_ IN CASE WHEN c IS NULL THEN [] ELSE [1] END | CREATE (e)-[:ON_CIRCUIT]->(c))
WITH DISTINCT e
UNWIND $groups AS gkey
MATCH (g:NeuronGroup {key: gkey})
CREATE (e)-[:MASKED]->(g)
RETURN count(g) AS linked
