// name: similarity-matrix
// description: How alike every pair of the given circuits is: weightedJaccard as class-similarity computes it
//   (over the core neurons below the logit, the sum of the smaller influence over the sum of the larger), one
//   row per pair that shares a neuron (a pair that shares none has 0 and no row). For circuits of one family
//   (`neurflow serve` draws the atlas's matrix from it): the SIMILAR_TO written at ingestion (graph model 1.7;
//   pairs of circuits of other families or of one class have none), computed here for pairs of circuits written
//   before 1.7.
// param: circuits (string, required) comma-separated circuit ids
WITH [x IN split($circuits, ',') | trim(x)] AS ids
CALL (ids) {
  MATCH (c:Circuit)-[s:SIMILAR_TO]->(o:Circuit)
  WHERE c.id IN ids AND o.id IN ids AND c.complete AND o.complete AND s.sharedNeurons > 0
  RETURN CASE WHEN c.id < o.id THEN c.id ELSE o.id END AS a, CASE WHEN c.id < o.id THEN o.id ELSE c.id END AS b,
         s.weightedJaccard AS weightedJaccard
  UNION ALL
  // both circuits written before 1.7
  MATCH (c:Circuit)
  WHERE c.id IN ids AND c.complete AND c.coreInfluences IS NULL
  MATCH (c)-[r:HAS_CORE_NEURON]->(n:Neuron)
  WHERE r.depth > 0
  WITH n, collect({id: c.id, influence: r.influence, total: c.coreInfluence}) AS users
  UNWIND users AS a
  UNWIND users AS b
  WITH a, b WHERE a.id < b.id
  WITH a.id AS a, b.id AS b, a.total AS totalA, b.total AS totalB,
       sum(CASE WHEN a.influence < b.influence THEN a.influence ELSE b.influence END) AS smaller
  RETURN a, b, CASE WHEN totalA + totalB - smaller > 0 THEN smaller / (totalA + totalB - smaller) ELSE 0.0 END
           AS weightedJaccard
}
RETURN a, b, weightedJaccard
ORDER BY a, b
