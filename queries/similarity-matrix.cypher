// name: similarity-matrix
// description: How alike every pair of the given circuits is: weightedJaccard as class-similarity computes it
//   (over the core neurons below the logit, the sum of the smaller influence over the sum of the larger), one
//   row per pair that shares a neuron (a pair that shares none has 0 and no row). For circuits of one family
//   (`neurflow serve` draws the atlas's matrix from it).
// param: circuits (string, required) comma-separated circuit ids
WITH [x IN split($circuits, ',') | trim(x)] AS ids
MATCH (c:Circuit)
WHERE c.id IN ids AND c.complete
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
ORDER BY a, b
