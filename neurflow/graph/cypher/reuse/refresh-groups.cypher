// The reuse summary of the neuron groups $groups (1.7), what concept-reuse's "group" rows read: over a group's
// OVERLAPS at Jaccard >= $minJaccard with groups of the newest circuits of the other classes of its family
// ($ids), its best match in each such class (the largest Jaccard, then influence): reuseClassCount (1 + the
// classes matched), reuseClasses (their names, best first), reuseJaccard (the mean of the best Jaccards) and
// reuseShared (the sum over them of the smaller of the two influences). Null for a group that matches none or
// whose circuit is not among $ids.
UNWIND $groups AS key
MATCH (g:NeuronGroup {key: key})
CALL (g) {
  MATCH (g)-[o:OVERLAPS]-(h:NeuronGroup)
  WHERE g.circuitId IN $ids AND o.jaccard >= $minJaccard AND h.circuitId IN $ids
  WITH h.className AS other, max([o.jaccard, h.influence]) AS best
  WITH collect([other] + best) AS matches
  RETURN matches, CASE WHEN size(matches) > 0 THEN reduce(s = 0.0, m IN matches | s + m[1]) / size(matches) END
         AS jaccard,
         reduce(s = 0.0, m IN matches | s + CASE WHEN m[2] < g.influence THEN m[2] ELSE g.influence END) AS shared
}
SET g.reuseClassCount = CASE WHEN size(matches) > 0 THEN 1 + size(matches) END,
    g.reuseClasses = CASE WHEN size(matches) > 0
                          THEN COLLECT { UNWIND matches AS m RETURN m[0] ORDER BY m[1] DESC, m[2] DESC, m[0] } END,
    g.reuseJaccard = CASE WHEN size(matches) > 0 THEN jaccard END,
    g.reuseShared = CASE WHEN size(matches) > 0 THEN shared END
RETURN count(g) AS refreshed
