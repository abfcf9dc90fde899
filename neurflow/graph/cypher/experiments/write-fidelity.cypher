// A FidelityStudy linked to its model, its classes (merged) and the circuits it used.
MERGE (m:Model {key: $model.key}) ON CREATE SET m += $model
CREATE (s:FidelityStudy) SET s = $props, s.createdAt = datetime()
CREATE (s)-[:OF_MODEL]->(m)
WITH s
UNWIND $classes AS t
MERGE (cl:Class {index: t.index}) ON CREATE SET cl += t
CREATE (s)-[:FOR_CLASS]->(cl)
WITH DISTINCT s
UNWIND $circuits AS cid
MATCH (c:Circuit {id: cid})
CREATE (s)-[:ON_CIRCUIT]->(c)
