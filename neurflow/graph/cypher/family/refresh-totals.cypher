// A family's total influence on each of $neurons, summed over its complete circuits (one per class), after a
// circuit of the family became complete or was deleted: specificity = a circuit's influence / this total;
// maxInfluence: the largest one class gives it (influence - maxInfluence: what it carries beyond its main class).
MATCH (f:CircuitFamily {key: $family})
SET f.refreshedAt = datetime()  // a write lock: refreshes of one family take turns
WITH f
UNWIND $neurons AS key
MATCH (n:Neuron {key: key})
OPTIONAL MATCH (n)<-[r:HAS_CORE_NEURON]-(o:Circuit)
WHERE o.familyKey = $family AND o.complete
WITH f, n, sum(r.influence) AS total, max(r.influence) AS most, count(o) AS classes
MERGE (f)-[t:FAMILY_INFLUENCE]->(n)
SET t.influence = total, t.maxInfluence = most, t.classes = classes, t.influenceLabel = toString(round(total, 3))
WITH t, classes WHERE classes = 0
DELETE t
