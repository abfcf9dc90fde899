// name: concept-reuse
// description: Concepts that carry influence in several classes, within one family of comparable circuits (same
//   model, weights, layers and build parameters; the newest circuit of each class). kind "neuron": core neurons
//   (below the logit) ranked by sharedInfluence, the influence they carry beyond their main class (the sum over
//   classes minus the largest), so a neuron every class lists but only one relies on ranks low; classes and
//   influences list who uses it, largest first. kind "group": neuron groups that overlap (Jaccard of member
//   neurons >= minJaccard) groups of other classes; sharedInfluence sums, over the other classes, the smaller
//   influence of the group and its best match there. kind "group-pair": pairs of overlapping groups of two
//   classes ranked by the smaller influence. family: the family compared. Whole circuits at the default
//   minJaccard read what ingestion maintains (graph model 1.7: groups' reuse summaries, OVERLAPS.smallerInfluence);
//   pruned views, another minJaccard and circuits written before 1.7 are computed here.
// param: minClasses (int, default 2) least number of classes a neuron or group must appear in
// param: minJaccard (float, default 0.5) least Jaccard overlap (OVERLAPS edges exist from 0.2 up)
// param: limit (int, default 10) rows of each kind
// param: prune (float, default null) pruned views: per layer, the neurons and groups carrying this share of the
//   layer's influence in their circuit (e.g. 0.8)
// param: model (string, default null) model name or key (name@weightsId); default: every model
// param: class (string, default null) compare the family of this class's newest circuit (name, index or wnid)
// param: family (string, default null) family key; default: the family with the most complete circuits (of the
//   model, or holding the class), the newest first among equals
CALL () {
  MATCH (c:Circuit {complete: true})
  WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model)
    AND ($family IS NULL OR c.familyKey = $family)
    AND ($class IS NULL OR EXISTS {
      MATCH (c)-[:FOR_CLASS]->(cl:Class)
      WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class })
  WITH c.familyKey AS family, count(c) AS circuits, max(c.ingestedAt) AS newest
  RETURN family
  ORDER BY circuits DESC, newest DESC, family
  LIMIT 1
}
MATCH (f:CircuitFamily {key: family})
CALL (f) {  // the newest complete circuit of each class in the family
  MATCH (o:Circuit {familyKey: f.key})
  WHERE o.complete
  WITH o ORDER BY o.ingestedAt DESC, o.id
  WITH o.classIndex AS index, collect(o)[0] AS o
  RETURN collect(o) AS circuits, collect(o.id) AS ids
}
// whole circuits of graph model 1.7 at the threshold of the maintained reuse summaries: groups and pairs are read
// from what ingestion wrote; else (pruned views, another minJaccard, circuits written before) computed here
OPTIONAL MATCH (d:DataModel)
WITH f, circuits, ids,
     coalesce($prune IS NULL AND $minJaccard = d.reuseMinJaccard
              AND all(o IN circuits WHERE o.coreInfluences IS NOT NULL), false) AS maintained
CALL (f, circuits, ids, maintained) {
  CALL (f, circuits) {
    // whole circuits: the family totals written at ingestion
    MATCH (f)-[t:FAMILY_INFLUENCE]->(n:Neuron)
    WHERE $prune IS NULL AND t.classes >= $minClasses AND n.layer <> f.layers[0]
    RETURN n, t.influence AS total, t.influence - t.maxInfluence AS beyond
    UNION ALL
    // pruned views: summed here over the kept neurons
    UNWIND CASE WHEN $prune IS NULL THEN [] ELSE circuits END AS c
    MATCH (c)-[r:HAS_CORE_NEURON]->(n:Neuron)
    WHERE r.depth > 0 AND r.influenceBefore < $prune
    WITH n, sum(r.influence) AS total, max(r.influence) AS most, count(r) AS classes
    WHERE classes >= $minClasses
    RETURN n, total, total - most AS beyond
  }
  WITH n, total, beyond, ids ORDER BY beyond DESC, total DESC, n.key LIMIT $limit
  CALL (n, ids) {
    MATCH (n)<-[r:HAS_CORE_NEURON]-(o:Circuit)
    WHERE o.id IN ids AND ($prune IS NULL OR r.influenceBefore < $prune)
    WITH o, r ORDER BY r.influence DESC, o.className
    RETURN collect(o.className) AS classes, collect(r.influence) AS influences
  }
  RETURN 'neuron' AS kind, n.layer + ':' + n.channel AS item, n.layer AS layer, size(classes) AS classCount,
         classes, influences, total AS influence, beyond AS sharedInfluence, null AS jaccard
  ORDER BY sharedInfluence DESC, influence DESC, item
  UNION ALL
  // maintained: each group's reuse summary (neurflow.graph.cross_class)
  WITH ids WHERE maintained
  MATCH (g:NeuronGroup)
  WHERE g.circuitId IN ids AND g.reuseClassCount >= $minClasses
  WITH g, g.className + ' ' + g.groupId AS item
  ORDER BY g.reuseShared DESC, g.reuseJaccard DESC, item
  LIMIT $limit
  RETURN 'group' AS kind, item, g.layer AS layer, g.reuseClassCount AS classCount, [g.className] + g.reuseClasses
         AS classes, null AS influences, g.influence AS influence, g.reuseShared AS sharedInfluence,
         g.reuseJaccard AS jaccard
  UNION ALL
  WITH ids WHERE NOT maintained
  MATCH (g:NeuronGroup)-[o:OVERLAPS]-(h:NeuronGroup)  // a seek of the OVERLAPS(jaccard) index, both directions
  USING INDEX o:OVERLAPS(jaccard)  // else planned from the circuitId index: every group's OVERLAPS expanded
  WHERE o.jaccard >= $minJaccard AND g.circuitId IN ids AND h.circuitId IN ids
    AND ($prune IS NULL OR (g.influenceBefore < $prune AND h.influenceBefore < $prune))
  // g's best match in each other class: the largest Jaccard, then influence (a max, not a sort of every pair)
  WITH g, h.className AS other, max([o.jaccard, h.influence]) AS best
  WITH g, collect([other] + best) AS matches, avg(best[0]) AS jaccard,
       sum(CASE WHEN best[1] < g.influence THEN best[1] ELSE g.influence END) AS shared
  WHERE 1 + size(matches) >= $minClasses
  WITH g, matches, jaccard, shared, g.className + ' ' + g.groupId AS item
  ORDER BY shared DESC, jaccard DESC, item
  LIMIT $limit
  RETURN 'group' AS kind, item, g.layer AS layer, 1 + size(matches) AS classCount,
         [g.className] + COLLECT { UNWIND matches AS m RETURN m[0] ORDER BY m[1] DESC, m[2] DESC, m[0] } AS classes,
         null AS influences, g.influence AS influence, shared AS sharedInfluence, jaccard
  ORDER BY sharedInfluence DESC, jaccard DESC, item
  LIMIT $limit
  UNION ALL
  // maintained: the strongest pairs first from the OVERLAPS(smallerInfluence) index, down to the limit-th
  WITH ids WHERE maintained
  CALL (ids) {
    MATCH (g:NeuronGroup)-[o:OVERLAPS]->(h:NeuronGroup)
    USING INDEX o:OVERLAPS(smallerInfluence)
    WHERE o.smallerInfluence IS NOT NULL AND o.jaccard >= $minJaccard AND g.circuitId IN ids AND h.circuitId IN ids
    WITH o ORDER BY o.smallerInfluence DESC
    LIMIT $limit
    RETURN min(o.smallerInfluence) AS floor
  }
  MATCH (g:NeuronGroup)-[o:OVERLAPS]->(h:NeuronGroup)
  USING INDEX o:OVERLAPS(smallerInfluence)
  WHERE o.smallerInfluence >= floor AND o.jaccard >= $minJaccard AND g.circuitId IN ids AND h.circuitId IN ids
  RETURN 'group-pair' AS kind, g.className + ' ' + g.groupId + ' ~ ' + h.className + ' ' + h.groupId AS item,
         g.layer AS layer, 2 AS classCount, [g.className, h.className] AS classes, [g.influence, h.influence] AS influences,
         g.influence + h.influence AS influence, o.smallerInfluence AS sharedInfluence, o.jaccard AS jaccard
  ORDER BY sharedInfluence DESC, jaccard DESC, item
  LIMIT $limit
  UNION ALL
  WITH ids WHERE NOT maintained
  MATCH (g:NeuronGroup)-[o:OVERLAPS]->(h:NeuronGroup)  // a seek of the OVERLAPS(jaccard) index
  USING INDEX o:OVERLAPS(jaccard)  // else planned from the circuitId index: every group's OVERLAPS expanded
  WHERE o.jaccard >= $minJaccard AND g.circuitId IN ids AND h.circuitId IN ids
    AND ($prune IS NULL OR (g.influenceBefore < $prune AND h.influenceBefore < $prune))
  RETURN 'group-pair' AS kind, g.className + ' ' + g.groupId + ' ~ ' + h.className + ' ' + h.groupId AS item,
         g.layer AS layer, 2 AS classCount, [g.className, h.className] AS classes, [g.influence, h.influence] AS influences,
         g.influence + h.influence AS influence,
         CASE WHEN g.influence < h.influence THEN g.influence ELSE h.influence END AS sharedInfluence,
         o.jaccard AS jaccard
  ORDER BY sharedInfluence DESC, jaccard DESC, item
  LIMIT $limit
}
RETURN kind, item, layer, classCount, classes, influences, influence, sharedInfluence, jaccard, f.key AS family
