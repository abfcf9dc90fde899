// For a class (name, index or wnid): the models of its complete circuits, and how many other classes have a
// complete circuit of one of those models: why a query of the class may answer nothing.
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
OPTIONAL MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WITH cl, collect(DISTINCT c.modelKey) AS models
OPTIONAL MATCH (o:Circuit {complete: true})
WHERE o.modelKey IN models AND o.classIndex <> cl.index
RETURN cl.name AS name, size(models) AS models, count(DISTINCT o.classIndex) AS others
