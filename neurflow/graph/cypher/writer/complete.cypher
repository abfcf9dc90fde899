// The last write of a circuit, in the transaction that holds its model's lock (writer/lock-model.cypher): from
// now on queries see it. No row back: another attempt claimed the circuit or it was deleted meanwhile.
MATCH (c:Circuit {id: $circuitId})
WHERE c.writeId = $writeId
SET c.complete = true, c.ingestedAt = datetime()
RETURN c.id AS id
