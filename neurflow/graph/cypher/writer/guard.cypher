// Run first in every transaction of an ingestion attempt: the attempt still owns the circuit (no later attempt
// claimed it). Setting heartbeatAt locks the Circuit node until the transaction commits, so a later claim waits
// for this batch and the next batch of this attempt then finds no row and stops.
MATCH (c:Circuit {id: $circuitId})
WHERE c.writeId = $writeId AND NOT c.complete
SET c.heartbeatAt = datetime()
RETURN count(c) AS owned
