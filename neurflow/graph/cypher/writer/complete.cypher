// The last write of a circuit: from now on queries see it. No row back: the circuit was deleted meanwhile.
MATCH (c:Circuit {id: $circuitId})
SET c.complete = true, c.ingestedAt = datetime()
RETURN c.id AS id
