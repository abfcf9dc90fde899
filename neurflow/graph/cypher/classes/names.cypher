// Every class name in the graph, for suggestions when a class is not found.
MATCH (cl:Class)
WHERE cl.name IS NOT NULL
RETURN cl.name AS name
ORDER BY name
