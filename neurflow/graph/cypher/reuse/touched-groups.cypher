// The neuron groups whose reuse summary (refresh-groups.cypher) may change when a circuit of class $classIndex
// in $family is completed, rewritten or deleted: the groups below the logit of every circuit of that class in
// the family (one of them is the newest, the others stop or start counting) and the groups of the family they
// overlap at >= $minJaccard.
MATCH (c:Circuit {familyKey: $family})
WHERE c.classIndex = $classIndex
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
WHERE g.depth > 0
OPTIONAL MATCH (g)-[o:OVERLAPS]-(h:NeuronGroup)
WHERE o.jaccard >= $minJaccard
WITH collect(DISTINCT g.key) AS own, collect(DISTINCT h.key) AS partners
RETURN own + [k IN partners WHERE NOT k IN own] AS groups
