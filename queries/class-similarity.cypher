// name: class-similarity
// description: Classes ranked by how much circuit structure they share with one class (same model): the
//   weighted Jaccard of their core neurons (weight = a neuron's incoming |w| in the circuit: sum of the
//   smaller over sum of the larger), then the plain Jaccard; the logit layer is left out.
// param: class (string, required) class name, index or wnid
// param: limit (int, default 10) classes to list
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: circuit (string, default null) circuit id, to choose among several circuits of the class
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WHERE ($model IS NULL OR c.modelKey = $model OR c.modelName = $model) AND ($circuit IS NULL OR c.id = $circuit)
WITH c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[a:HAS_CORE_NEURON]->(n:Neuron)<-[b:HAS_CORE_NEURON]-(o:Circuit)
WHERE a.depth > 0 AND o.complete AND o.classIndex <> c.classIndex AND o.modelKey = c.modelKey
WITH c, o, count(n) AS shared,
     sum(CASE WHEN a.weight < b.weight THEN a.weight ELSE b.weight END) AS smaller
RETURN o.className AS class, o.classIndex AS index, o.id AS circuit, shared AS sharedNeurons,
       CASE WHEN c.coreWeight + o.coreWeight - smaller > 0
            THEN smaller / (c.coreWeight + o.coreWeight - smaller) ELSE 0.0 END AS weightedJaccard,
       toFloat(shared) / (c.coreNeurons + o.coreNeurons - shared) AS jaccard
ORDER BY weightedJaccard DESC, jaccard DESC, class
LIMIT $limit
