// name: class-specific
// description: What sets one class apart within its family (circuits of the same model, weights and build
//   parameters): its core neurons and its neuron groups below the logit layer (depth > 0), ranked by score =
//   influence x specificity (a large share of what this class's circuit carries, little use by the family's
//   other classes). The score ignores signs, so inhibitory parts rank as excitatory ones do; effect says which
//   each is: signedInfluence is the influence with signed edge weights (each path the product of its signs;
//   docs/cross-class.md), excitatory when >= 0 (on balance the part raises the class logit on the class's
//   images), inhibitory when < 0. A neuron's specificity is this circuit's influence on it over the family's
//   total influence on it (1 = only this class uses it); a group's is the mean of its members' specificity weighted by what the group
//   carries through each member (HAS_MEMBER influence), so its score is the sum of those products. classCount:
//   for a neuron, how many of the family's classes have it as a core neuron; for a group, its own class plus the family's
//   other classes with a group overlapping it (OVERLAPS, any Jaccard); both ignore prune. thumbnails: the
//   strongest concept patches (a group's semantic groups', or the neuron's semantic groups' in this circuit).
//   limit rows of each kind, neurons first, best first.
// param: class (string, required) class name, index or wnid
// param: limit (int, default 10) rows of each kind (neuron, group)
// param: prune (float, default null) only neurons and groups with influenceBefore < prune (the view pruned to that share of each layer's influence); default: all
// param: thumbnails (int, default 4) thumbnail URIs per row, strongest patch first
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id, to choose among several circuits of the class
// param: family (string, default null) family key (Circuit.familyKey), to choose among several circuits of the class
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
  AND ($family IS NULL OR c.familyKey = $family)
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[:IN_FAMILY]->(f:CircuitFamily)
CALL (c, f) {
  MATCH (c)-[r:HAS_CORE_NEURON]->(n:Neuron)
  WHERE r.depth > 0 AND ($prune IS NULL OR r.influenceBefore < $prune)
  CALL (f, n) {  // planned on its own: from n (one FAMILY_INFLUENCE per family), not from the family's neurons
    MATCH (f)-[t:FAMILY_INFLUENCE]->(n)
    RETURN t
  }
  WITH c, n, r, t, CASE WHEN t.influence > 0 THEN r.influence / t.influence ELSE 0.0 END AS specificity
  WITH c, n, r, t, specificity, r.influence * specificity AS score, n.layer + ':' + n.channel AS item
  ORDER BY score DESC, item
  LIMIT $limit
  CALL (c, n) {
    MATCH (s:SemanticGroup)<-[e:EXEMPLIFIES]-(p:Patch)  // the key (circuitId|layer:channel/index): an index seek
    WHERE s.key STARTS WITH c.id + '|' + n.layer + ':' + n.channel + '/' AND e.rank < $thumbnails
    WITH p, max(e.activation) AS activation
    ORDER BY activation DESC, p.key
    LIMIT $thumbnails
    RETURN collect(p.thumbnailUri) AS thumbnails
  }
  RETURN 'neuron' AS kind, r.layer AS layer, r.depth AS depth, item, r.influence AS influence,
         r.signedInfluence AS signedInfluence, specificity, score, t.classes AS classCount, thumbnails
  UNION ALL
  MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
  WHERE g.depth > 0 AND ($prune IS NULL OR g.influenceBefore < $prune)
  MATCH (g)-[m:HAS_MEMBER]->(n:Neuron)<-[r:HAS_CORE_NEURON]-(c)
  USING JOIN ON n  // the members against the circuit's core neurons, not an edge lookup per member
  CALL (f, n) {
    MATCH (f)-[t:FAMILY_INFLUENCE]->(n)
    RETURN t
  }
  WITH c, g, sum(CASE WHEN t.influence > 0 THEN m.influence * r.influence / t.influence ELSE 0.0 END) AS score
  WITH c, g, score, CASE WHEN g.influence > 0 THEN score / g.influence ELSE 0.0 END AS specificity
  ORDER BY score DESC, g.groupId
  LIMIT $limit
  CALL (c, g) {
    OPTIONAL MATCH (g)-[:OVERLAPS]-(:NeuronGroup)<-[:HAS_GROUP]-(o:Circuit)
    WHERE o.complete AND o.familyKey = c.familyKey AND o.classIndex <> c.classIndex
    RETURN 1 + count(DISTINCT o.classIndex) AS classCount
  }
  CALL (g) {
    MATCH (g)-[:HAS_SEMANTIC_GROUP]->(:SemanticGroup)<-[e:EXEMPLIFIES]-(p:Patch)
    WHERE e.rank < $thumbnails
    WITH p, max(e.activation) AS activation
    ORDER BY activation DESC, p.key
    LIMIT $thumbnails
    RETURN collect(p.thumbnailUri) AS thumbnails
  }
  RETURN 'group' AS kind, g.layer AS layer, g.depth AS depth, g.groupId AS item, g.influence AS influence,
         g.signedInfluence AS signedInfluence, specificity, score, classCount, thumbnails
}
RETURN c.className AS class, c.id AS circuit, kind, layer, depth, item, influence,
       CASE WHEN signedInfluence IS NULL THEN null WHEN signedInfluence < 0 THEN 'inhibitory'
            ELSE 'excitatory' END AS effect, signedInfluence, specificity, score, classCount, thumbnails
ORDER BY kind DESC, score DESC, item
