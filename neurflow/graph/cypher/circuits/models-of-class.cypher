// Models (keys) with a complete circuit of a class, for error messages.
MATCH (c:Circuit {complete: true}) WHERE c.classIndex = $classIndex
RETURN DISTINCT c.modelKey AS key ORDER BY key
