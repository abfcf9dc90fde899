// Feature evolutions (labels/write-evolution.cypher) on a circuit's group edges before a forced rewrite.
MATCH (c:Circuit {id: $circuitId})-[:HAS_GROUP]->(lower:NeuronGroup)-[f:FLOWS_TO]->(upper:NeuronGroup)
WHERE f.evolutionCaption IS NOT NULL OR f.evolutionModel IS NOT NULL
RETURN lower.groupId AS lower, upper.groupId AS upper, properties(f) AS props
