// The Circuit node of a forced rewrite keeps its identity and the links experiments made to it (ON_CIRCUIT,
// VALIDATES); its properties are replaced by the new circuit's, incomplete and claimed by this attempt.
MATCH (c:Circuit {id: $circuitId})
SET c = $circuit, c.writeId = $writeId, c.writer = $writer, c.heartbeatAt = datetime()
RETURN count(c) AS reset
