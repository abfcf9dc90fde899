// A forced rewrite starts by locking the complete circuit it replaces and reading which attempt wrote it, so
// two rewrites of one circuit take turns and the later one sees that the circuit changed under it.
MATCH (c:Circuit {id: $circuitId})
WHERE c.complete
SET c.replacingAt = datetime()
RETURN coalesce(c.writeId, '') AS writeId
