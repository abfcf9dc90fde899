// name: concept-reuse
// description: Concepts reused across classes. kind "neuron": core neurons in the circuits of at least
//   minClasses classes, ranked by the number of classes, then by their total incoming |w| (weight) over those
//   circuits. kind "group": neuron groups that overlap (Jaccard of member neurons >= minJaccard) groups of other
//   classes' circuits, ranked by the number of classes (the group's own included), then by the mean best
//   Jaccard; weight is the group's influence. kind "group-pair": the most overlapping pairs of groups of
//   different classes (same model and layer), weight = the smaller influence.
// param: minClasses (int, default 2) least number of classes a neuron or group must appear in
// param: minJaccard (float, default 0.5) least Jaccard overlap (OVERLAPS edges exist from 0.2 up)
// param: limit (int, default 10) rows of each kind
// param: model (string, default null) model name or key (name@weightsId); default: every model
MATCH (c:Circuit {complete: true})
WHERE $model IS NULL OR c.modelKey = $model OR c.modelName = $model
WITH collect(c) AS circuits, collect(c.id) AS ids
CALL (circuits, ids) {
  UNWIND circuits AS c
  WITH c, c.classIndex AS classIndex, c.className AS className  // read once per circuit, not per neuron
  MATCH (c)-[r:HAS_CORE_NEURON]->(n:Neuron)
  WHERE r.depth > 0
  WITH n, count(DISTINCT classIndex) AS classCount, collect(DISTINCT className) AS classes, sum(r.weight) AS weight
  WHERE classCount >= $minClasses
  RETURN 'neuron' AS kind, n.layer + ':' + n.channel AS item, n.layer AS layer, classCount, classes, weight,
         null AS jaccard
  ORDER BY classCount DESC, weight DESC, item
  LIMIT $limit
  UNION ALL
  UNWIND circuits AS c
  MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)-[o:OVERLAPS]-(h:NeuronGroup)
  WHERE o.jaccard >= $minJaccard AND h.circuitId IN ids
  WITH c, g, h.className AS other, max(o.jaccard) AS best
  WITH c, g, count(other) + 1 AS classCount, [c.className] + collect(other) AS classes, avg(best) AS jaccard
  WHERE classCount >= $minClasses
  RETURN 'group' AS kind, c.className + ' ' + g.groupId AS item, g.layer AS layer, classCount, classes,
         g.influence AS weight, jaccard
  ORDER BY classCount DESC, jaccard DESC, weight DESC, item
  LIMIT $limit
  UNION ALL
  MATCH (g:NeuronGroup)-[o:OVERLAPS]->(h:NeuronGroup)  // a seek of the OVERLAPS(jaccard) index
  WHERE o.jaccard >= $minJaccard AND h.circuitId IN ids
  MATCH (c:Circuit)-[:HAS_GROUP]->(g)
  WHERE c IN circuits
  RETURN 'group-pair' AS kind, c.className + ' ' + g.groupId + ' ~ ' + h.className + ' ' + h.groupId AS item,
         g.layer AS layer, 2 AS classCount, [c.className, h.className] AS classes,
         CASE WHEN g.influence < h.influence THEN g.influence ELSE h.influence END AS weight, o.jaccard AS jaccard
  ORDER BY jaccard DESC, weight DESC, item
  LIMIT $limit
}
RETURN kind, item, layer, classCount, classes, weight, jaccard
