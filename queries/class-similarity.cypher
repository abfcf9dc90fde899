// name: class-similarity
// description: Classes ranked by how much of one class's circuit they share, like with like: only the circuits
//   of the same family (model, weights, layers and build parameters; the newest circuit of each class) are
//   compared. weightedJaccard: the weighted Jaccard of the neurons' influence (sum over the shared neurons of the
//   smaller influence over the sum over all neurons of the larger), all layers below the logit together (each
//   layer carries the same total), and per layer in perLayer. Kept for comparison (docs/cross-class.md): jaccard
//   of the core-neuron sets and incomingWeightJaccard (weighted Jaccard of the summed incoming |w|). Classes of
//   the same model whose circuits are all of other families come last, comparable = false, measures null. Whole
//   circuits read the SIMILAR_TO written at ingestion (graph model 1.7, docs/graph-model.md); pruned views and
//   circuits written before 1.7 are compared here.
// param: class (string, required) class name, index or wnid
// param: limit (int, default 10) classes to list (and, after them, classes without a comparable circuit)
// param: prune (float, default null) compare pruned views: per layer, the neurons carrying this share of the
//   layer's influence (e.g. 0.8)
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id of the class, to choose among its circuits
// param: family (string, default null) family key: compare circuits of this family (default: the family of the
//   class's newest circuit)
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
  AND ($family IS NULL OR c.familyKey = $family)
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
CALL (c) {  // the newest complete circuit of every other class in the family
  MATCH (o:Circuit {familyKey: c.familyKey})
  WHERE o.complete AND o.classIndex <> c.classIndex
  WITH o ORDER BY o.ingestedAt DESC, o.id
  WITH o.classIndex AS index, collect(o)[0] AS o
  RETURN collect(o.id) AS others
}
CALL (c, others) {
  // maintained: the SIMILAR_TO of every pair of the family, written when the later of the two completed
  WITH c, others WHERE $prune IS NULL AND c.coreInfluences IS NOT NULL
  MATCH (c)-[s:SIMILAR_TO]-(o:Circuit)
  WHERE o.id IN others
  WITH c, o, s ORDER BY s.weightedJaccard DESC, s.jaccard DESC, o.className
  LIMIT $limit
  RETURN o.className AS class, o.classIndex AS index, o.id AS circuit, true AS comparable,
         s.weightedJaccard AS weightedJaccard,
         [i IN range(1, size(c.layers) - 1) | {layer: c.layers[i], weightedJaccard: s.layerWeightedJaccard[i - 1]}]
           AS perLayer,
         s.sharedNeurons AS sharedNeurons, s.jaccard AS jaccard, s.incomingWeightJaccard AS incomingWeightJaccard
  UNION ALL
  // pruned views, and circuits written before 1.7: computed here
  WITH c, others WHERE $prune IS NOT NULL OR c.coreInfluences IS NULL
  CALL (c) {  // this circuit's side, per layer
    MATCH (c)-[a:HAS_CORE_NEURON]->(:Neuron)
    WHERE a.depth > 0 AND ($prune IS NULL OR a.influenceBefore < $prune)
    WITH a.layer AS layer, sum(a.influence) AS influence, sum(a.weight) AS weight, count(a) AS neurons
    RETURN collect({layer: layer, influence: influence, weight: weight, neurons: neurons}) AS mine
  }
  CALL (c, others) {  // the neurons c shares with each other circuit, per layer, in one pass over the circuits of c's
    // core neurons (b.circuitId), not an Expand(Into) between two dense nodes per neuron and other circuit
    MATCH (c)-[a:HAS_CORE_NEURON]->(n:Neuron)
    WHERE a.depth > 0 AND ($prune IS NULL OR a.influenceBefore < $prune)
    WITH n, a.layer AS layer, a.influence AS ai, a.weight AS aw  // read once, not once per other circuit
    MATCH (n)<-[b:HAS_CORE_NEURON]-()
    WHERE b.circuitId IN others AND ($prune IS NULL OR b.influenceBefore < $prune)
    WITH b.circuitId AS id, layer,
         sum(CASE WHEN ai < b.influence THEN ai ELSE b.influence END) AS smaller,
         sum(CASE WHEN aw < b.weight THEN aw ELSE b.weight END) AS smallerWeight,
         count(*) AS shared
    WITH id, collect({layer: layer, smaller: smaller, smallerWeight: smallerWeight, shared: shared}) AS common
    RETURN collect({id: id, common: common}) AS sharing
  }
  WITH c, others, mine, sharing
  // every other circuit once: those sharing neurons, then (rarely any) those sharing none
  UNWIND sharing + CASE WHEN size(sharing) = size(others) THEN []
                        ELSE [x IN others WHERE NOT x IN [s IN sharing | s.id] | {id: x, common: []}] END AS other
  MATCH (o:Circuit {id: other.id})
  WITH c, mine, o, other.common AS common
  CALL (o) {  // the other circuit's totals below the logit: stored on the node (whole circuits), else counted
    WITH o WHERE $prune IS NOT NULL OR o.coreInfluence IS NULL
    MATCH (o)-[b:HAS_CORE_NEURON]->(:Neuron)
    WHERE b.depth > 0 AND ($prune IS NULL OR b.influenceBefore < $prune)
    RETURN sum(b.influence) AS countedInfluence, sum(b.weight) AS countedWeight, count(b) AS countedNeurons
  }
  WITH c, mine, o, common,
       CASE WHEN $prune IS NULL AND o.coreInfluence IS NOT NULL
            THEN {influence: o.coreInfluence, weight: o.coreWeight, neurons: o.coreNeurons}
            ELSE {influence: countedInfluence, weight: countedWeight, neurons: countedNeurons} END AS theirs
  WITH c, mine, o, common,
       reduce(s = 0.0, x IN common | s + x.smaller) AS smaller,
       reduce(s = 0.0, x IN mine | s + x.influence) + theirs.influence - reduce(s = 0.0, x IN common | s + x.smaller)
         AS larger,
       reduce(s = 0.0, x IN common | s + x.smallerWeight) AS smallerWeight,
       reduce(s = 0.0, x IN mine | s + x.weight) + theirs.weight - reduce(s = 0.0, x IN common | s + x.smallerWeight)
         AS largerWeight,
       reduce(s = 0, x IN common | s + x.shared) AS shared,
       reduce(s = 0, x IN mine | s + x.neurons) + theirs.neurons - reduce(s = 0, x IN common | s + x.shared) AS union
  WITH c, mine, o, common, shared,
       CASE WHEN larger > 0 THEN smaller / larger ELSE 0.0 END AS weightedJaccard,
       CASE WHEN union > 0 THEN toFloat(shared) / union ELSE 0.0 END AS jaccard,
       CASE WHEN largerWeight > 0 THEN smallerWeight / largerWeight ELSE 0.0 END AS incomingWeightJaccard
  ORDER BY weightedJaccard DESC, jaccard DESC, o.className
  LIMIT $limit
  CALL (o) {  // per layer, for the listed circuits only
    MATCH (o)-[b:HAS_CORE_NEURON]->(:Neuron)
    WHERE b.depth > 0 AND ($prune IS NULL OR b.influenceBefore < $prune)
    WITH b.layer AS layer, sum(b.influence) AS influence
    RETURN collect({layer: layer, influence: influence}) AS theirs
  }
  WITH o, weightedJaccard, jaccard, incomingWeightJaccard, shared,
       [layer IN c.layers[1..] |
        {layer: layer,
         mine: head([x IN mine WHERE x.layer = layer | x.influence] + [0.0]),
         theirs: head([x IN theirs WHERE x.layer = layer | x.influence] + [0.0]),
         smaller: head([x IN common WHERE x.layer = layer | x.smaller] + [0.0])}] AS layers
  RETURN o.className AS class, o.classIndex AS index, o.id AS circuit, true AS comparable, weightedJaccard,
         [l IN layers | {layer: l.layer,
                         weightedJaccard: CASE WHEN l.mine + l.theirs - l.smaller > 0
                           THEN l.smaller / (l.mine + l.theirs - l.smaller) ELSE 0.0 END}] AS perLayer,
         shared AS sharedNeurons, jaccard, incomingWeightJaccard
  UNION ALL
  // classes of the model with complete circuits, none of them in the family: listed, never compared
  MATCH (x:Circuit {modelKey: c.modelKey})
  WHERE x.complete AND x.classIndex <> c.classIndex
  WITH c, x.classIndex AS index, x.className AS class, collect(x.familyKey) AS families
  WHERE NOT c.familyKey IN families
  RETURN class, index, null AS circuit, false AS comparable, null AS weightedJaccard, null AS perLayer,
         null AS sharedNeurons, null AS jaccard, null AS incomingWeightJaccard
  ORDER BY class
  LIMIT $limit
}
RETURN class, index, circuit, comparable, weightedJaccard, perLayer, sharedNeurons, jaccard, incomingWeightJaccard
ORDER BY comparable DESC, weightedJaccard DESC, jaccard DESC, class
