// A family's totals on the core neurons of a circuit that just became complete, added to (refresh-totals.cypher
// recomputes them from every circuit; both give sum, max and count of the influence over the family's complete
// circuits). Only for a circuit whose earlier state never counted (a first write), so nothing is added twice.
MATCH (f:CircuitFamily {key: $family})
SET f.refreshedAt = datetime()  // a write lock: refreshes of one family take turns
WITH f
MATCH (:Circuit {id: $circuitId})-[r:HAS_CORE_NEURON]->(n:Neuron)
MERGE (f)-[t:FAMILY_INFLUENCE]->(n)
ON CREATE SET t.influence = 0.0, t.maxInfluence = r.influence, t.classes = 0
SET t.influence = t.influence + r.influence, t.classes = t.classes + 1,
    t.maxInfluence = CASE WHEN r.influence > t.maxInfluence THEN r.influence ELSE t.maxInfluence END
SET t.influenceLabel = toString(round(t.influence, 3))
