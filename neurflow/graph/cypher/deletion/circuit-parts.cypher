// Deletes up to $limit nodes of one circuit-scoped label ({label}: SemanticGroup or NeuronGroup) with their
// relationships; returns how many, and the keys of the patches that exemplified them.
MATCH (s:{label} {circuitId: $id})
WITH s LIMIT $limit
OPTIONAL MATCH (p:Patch)-[:EXEMPLIFIES]->(s)
WITH s, collect(p.key) AS patches
DETACH DELETE s
RETURN count(s) AS deleted, reduce(all = [], ps IN collect(patches) | all + ps) AS patches
