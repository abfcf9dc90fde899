// How many neuron groups of a class's newest complete circuit say what they depict (a label of caption prompt
// v2 on, `neurflow label`): bias-paths finds context paths only through them.
MATCH (cl:Class)
WHERE toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class
MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(cl)
WITH cl, c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
RETURN cl.name AS name, count(g) AS groups, count(g.depicts) AS depicting
