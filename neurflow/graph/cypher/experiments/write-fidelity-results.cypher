// The FidelityResult rows of a study, each linked to its layer when the layer is in the graph.
MATCH (s:FidelityStudy {id: $id})
UNWIND $rows AS r
CREATE (x:FidelityResult) SET x = r
CREATE (s)-[:HAS_RESULT]->(x)
WITH x
OPTIONAL MATCH (l:Layer {key: x.modelKey + '|' + x.layer})
FOREACH (_ IN CASE WHEN l IS NULL THEN [] ELSE [1] END | CREATE (x)-[:AT_LAYER]->(l))
