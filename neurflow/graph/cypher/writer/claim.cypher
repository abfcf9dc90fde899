// The first write of an ingestion attempt: the Circuit node is merged (one per circuit id) and, unless it is
// complete, claimed for this attempt ($writeId): an earlier attempt still running loses it, and its next batch
// (writer/guard.cypher) stops it. Setting writeId locks the node until this transaction commits, so attempts
// take turns. Returns the circuit's state before the claim.
MERGE (c:Circuit {id: $circuitId})
  ON CREATE SET c.complete = false, c.claimedNew = true
WITH c, coalesce(c.complete, false) AS complete, c.writeId AS previous, c.claimedNew AS created
SET c.writeId = CASE WHEN complete THEN c.writeId ELSE $writeId END,
    c.writer = CASE WHEN complete THEN c.writer ELSE $writer END,
    c.heartbeatAt = CASE WHEN complete THEN c.heartbeatAt ELSE datetime() END
REMOVE c.claimedNew
RETURN complete, previous, coalesce(created, false) AS created
