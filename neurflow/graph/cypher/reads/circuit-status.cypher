// One circuit's state: complete or not, written by graph model 1.1+ (it has a family) or not, and the write
// attempt that claimed it (writer/claim.cypher; null for circuits written before graph model 1.2).
MATCH (c:Circuit {id: $id})
RETURN c.complete AS complete, c.familyKey IS NOT NULL AS current, c.writeId AS writeId
