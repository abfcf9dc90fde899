// name: class-similarity
// description: Classes ranked by how much of one class's circuit they share, like with like: only the circuits
//   of the same family (model, weights, layers and build parameters; the newest circuit of each class) are
//   compared. weightedJaccard: the weighted Jaccard of the neurons' influence (sum over the shared neurons of the
//   smaller influence over the sum over all neurons of the larger), all layers below the logit together (each
//   layer carries the same total), and per layer in perLayer. Kept for comparison (docs/cross-class.md): jaccard
//   of the core-neuron sets and incomingWeightJaccard (weighted Jaccard of the summed incoming |w|). Classes of
//   the same model whose circuits are all of other families come last, comparable = false, measures null.
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
CALL (c) {  // this circuit's side, per layer
  MATCH (c)-[a:HAS_CORE_NEURON]->(:Neuron)
  WHERE a.depth > 0 AND ($prune IS NULL OR a.influenceBefore < $prune)
  WITH a.layer AS layer, sum(a.influence) AS influence, sum(a.weight) AS weight, count(a) AS neurons
  RETURN collect({layer: layer, influence: influence, weight: weight, neurons: neurons}) AS mine
}
CALL (c, others, mine) {
  UNWIND others AS otherId
  MATCH (o:Circuit {id: otherId})
  CALL (c, o) {  // shared neurons, per layer
    MATCH (c)-[a:HAS_CORE_NEURON]->(n:Neuron)<-[b:HAS_CORE_NEURON]-(o)
    WHERE a.depth > 0 AND ($prune IS NULL OR (a.influenceBefore < $prune AND b.influenceBefore < $prune))
    WITH a.layer AS layer,
         sum(CASE WHEN a.influence < b.influence THEN a.influence ELSE b.influence END) AS smaller,
         sum(CASE WHEN a.weight < b.weight THEN a.weight ELSE b.weight END) AS smallerWeight,
         count(n) AS shared
    RETURN collect({layer: layer, smaller: smaller, smallerWeight: smallerWeight, shared: shared}) AS common
  }
  CALL (o) {  // the other circuit's side, per layer
    MATCH (o)-[b:HAS_CORE_NEURON]->(:Neuron)
    WHERE b.depth > 0 AND ($prune IS NULL OR b.influenceBefore < $prune)
    WITH b.layer AS layer, sum(b.influence) AS influence, sum(b.weight) AS weight, count(b) AS neurons
    RETURN collect({layer: layer, influence: influence, weight: weight, neurons: neurons}) AS theirs
  }
  WITH o, [layer IN c.layers[1..] |
           {layer: layer,
            mine: head([x IN mine WHERE x.layer = layer] + [{influence: 0.0, weight: 0.0, neurons: 0}]),
            theirs: head([x IN theirs WHERE x.layer = layer] + [{influence: 0.0, weight: 0.0, neurons: 0}]),
            common: head([x IN common WHERE x.layer = layer] + [{smaller: 0.0, smallerWeight: 0.0, shared: 0}])}]
          AS layers
  WITH o, layers,
       reduce(s = 0.0, l IN layers | s + l.common.smaller) AS smaller,
       reduce(s = 0.0, l IN layers | s + l.mine.influence + l.theirs.influence - l.common.smaller) AS larger,
       reduce(s = 0.0, l IN layers | s + l.common.smallerWeight) AS smallerWeight,
       reduce(s = 0.0, l IN layers | s + l.mine.weight + l.theirs.weight - l.common.smallerWeight) AS largerWeight,
       reduce(s = 0, l IN layers | s + l.common.shared) AS shared,
       reduce(s = 0, l IN layers | s + l.mine.neurons + l.theirs.neurons - l.common.shared) AS union
  RETURN o.className AS class, o.classIndex AS index, o.id AS circuit, true AS comparable,
         CASE WHEN larger > 0 THEN smaller / larger ELSE 0.0 END AS weightedJaccard,
         [l IN layers | {layer: l.layer,
                         weightedJaccard: CASE WHEN l.mine.influence + l.theirs.influence - l.common.smaller > 0
                           THEN l.common.smaller / (l.mine.influence + l.theirs.influence - l.common.smaller)
                           ELSE 0.0 END}] AS perLayer,
         shared AS sharedNeurons,
         CASE WHEN union > 0 THEN toFloat(shared) / union ELSE 0.0 END AS jaccard,
         CASE WHEN largerWeight > 0 THEN smallerWeight / largerWeight ELSE 0.0 END AS incomingWeightJaccard
  ORDER BY weightedJaccard DESC, jaccard DESC, class
  LIMIT $limit
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
