// OVERLAPS from a completing circuit's neuron groups below the logit to the groups of the complete circuits of
// the other classes of its model that share member neurons with them (so of the same layer): Jaccard of the
// member sets >= $minJaccard, counted from the member links (|A u B| = |A| + |B| - |A n B|, sizes on the
// groups). smallerInfluence (1.7): the smaller of the two groups' influence, what concept-reuse ranks pairs by.
// Merged (idempotent); returns how many edges the circuit has.
MATCH (c:Circuit {id: $circuitId})
CALL (c) {
  MATCH (o:Circuit {modelKey: c.modelKey})
  WHERE o.complete AND o.classIndex <> c.classIndex
  RETURN collect(o.id) AS others
}
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
WHERE g.depth > 0
MATCH (g)-[:HAS_MEMBER]->(:Neuron)<-[:HAS_MEMBER]-(h:NeuronGroup)
WHERE h.circuitId IN others  // before the count: the list is no grouping key
WITH g, h, count(*) AS shared
WITH g, h, shared, toFloat(shared) / (g.size + h.size - shared) AS jaccard
WHERE jaccard >= $minJaccard
MERGE (g)-[o:OVERLAPS]->(h)
SET o.jaccard = jaccard, o.shared = shared, o.circuitId = $circuitId,
    o.smallerInfluence = CASE WHEN g.influence < h.influence THEN g.influence ELSE h.influence END
RETURN count(o) AS overlaps
