// name: shared-groups
// description: The neuron groups two classes share, compared like with like: class a's circuit (the newest
//   complete one, or the one of model / family) and class b's newest complete circuit of the same family (same
//   model, weights and build parameters). One row per pair of groups of the two circuits linked by OVERLAPS
//   (Jaccard of member neurons >= minJaccard), ranked by weight = the smaller of the two groups' influence
//   (what both classes route through the shared concept), then by Jaccard; with the member neurons they share
//   (layer:channel) and each side's strongest concept patches. When b has no complete circuit in a's family, one
//   row of kind 'no comparable circuit' (the family and a's circuit; the pair columns null). An unknown class
//   is refused (neurflow names the closest ones). paths: the two groups and their shared member neurons, drawn by
//   Neo4j Browser.
// param: a (string, required) first class: name, index or wnid; its circuit sets the family
// param: b (string, required) second class: name, index or wnid; compared through its circuit in a's family
// param: limit (int, default 10) pairs of groups
// param: minJaccard (float, default 0.2) least Jaccard overlap of the two groups' member neurons (OVERLAPS edges exist from 0.2 up)
// param: prune (float, default null) only groups with influenceBefore < prune on both sides (the view pruned to that share of each layer's influence); default: all
// param: thumbnails (int, default 4) thumbnail URIs per group, strongest patch first
// param: model (string, default null) model name or key (name@weightsId) of a's circuit; default: any model
// param: family (string, default null) family key (Circuit.familyKey) of a's circuit; default: a's newest circuit's
MATCH (cla:Class)
WHERE toString(cla.index) = $a OR toLower(cla.name) = toLower($a) OR cla.wnid = $a
MATCH (ca:Circuit {complete: true})-[:FOR_CLASS]->(cla)
WHERE ($model IS NULL OR ca.modelKey = $model OR ca.modelName = $model) AND ($family IS NULL OR ca.familyKey = $family)
WITH ca ORDER BY ca.ingestedAt DESC, ca.id LIMIT 1
MATCH (clb:Class)
WHERE toString(clb.index) = $b OR toLower(clb.name) = toLower($b) OR clb.wnid = $b
WITH ca, clb ORDER BY clb.index LIMIT 1
OPTIONAL MATCH (cb:Circuit {complete: true})-[:FOR_CLASS]->(clb)
WHERE cb.familyKey = ca.familyKey
WITH ca, clb, cb ORDER BY cb.ingestedAt DESC, cb.id LIMIT 1
CALL (ca, clb, cb) {
  WITH ca, clb, cb WHERE cb IS NULL
  RETURN 'no comparable circuit' AS kind, clb.name AS classB, null AS circuitB, null AS layer, null AS groupA,
         null AS groupB, null AS influenceA, null AS influenceB, null AS weight, null AS jaccard, null AS shared,
         null AS sharedNeurons, null AS thumbnailsA, null AS thumbnailsB, null AS paths
  UNION ALL
  WITH ca, cb WHERE cb IS NOT NULL
  MATCH (ca)-[:HAS_GROUP]->(ga:NeuronGroup)-[o:OVERLAPS]-(gb:NeuronGroup)<-[:HAS_GROUP]-(cb)
  WHERE o.jaccard >= $minJaccard
    AND ($prune IS NULL OR (ga.influenceBefore < $prune AND gb.influenceBefore < $prune))
  WITH cb, ga, gb, o, CASE WHEN ga.influence < gb.influence THEN ga.influence ELSE gb.influence END AS weight
  ORDER BY weight DESC, o.jaccard DESC, ga.groupId, gb.groupId
  LIMIT $limit
  CALL (ga) {
    MATCH (ga)-[:HAS_SEMANTIC_GROUP]->(:SemanticGroup)<-[e:EXEMPLIFIES]-(p:Patch)
    WHERE e.rank < $thumbnails
    WITH p, max(e.activation) AS activation
    ORDER BY activation DESC, p.key
    LIMIT $thumbnails
    RETURN collect(p.thumbnailUri) AS thumbnailsA
  }
  CALL (gb) {
    MATCH (gb)-[:HAS_SEMANTIC_GROUP]->(:SemanticGroup)<-[e:EXEMPLIFIES]-(p:Patch)
    WHERE e.rank < $thumbnails
    WITH p, max(e.activation) AS activation
    ORDER BY activation DESC, p.key
    LIMIT $thumbnails
    RETURN collect(p.thumbnailUri) AS thumbnailsB
  }
  RETURN 'shared' AS kind, cb.className AS classB, cb.id AS circuitB, ga.layer AS layer, ga.groupId AS groupA,
         gb.groupId AS groupB, ga.influence AS influenceA, gb.influence AS influenceB, weight, o.jaccard AS jaccard,
         o.shared AS shared,
         COLLECT { MATCH (ga)-[:HAS_MEMBER]->(n:Neuron)<-[:HAS_MEMBER]-(gb) RETURN n.layer + ':' + n.channel
                   ORDER BY n.channel } AS sharedNeurons,
         thumbnailsA, thumbnailsB,
         COLLECT { MATCH p = (ga)-[:HAS_MEMBER]->(:Neuron)<-[:HAS_MEMBER]-(gb) RETURN p } AS paths  // for Browser
}
RETURN kind, ca.familyKey AS family, ca.className AS classA, ca.id AS circuitA, classB, circuitB, layer, groupA,
       groupB, influenceA, influenceB, weight, jaccard, shared, sharedNeurons, thumbnailsA, thumbnailsB, paths
ORDER BY weight DESC, jaccard DESC, groupA, groupB
