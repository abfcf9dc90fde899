// The circuit's Model, Class and CircuitFamily (shared by circuits, merged) and the properties and links of
// its claimed Circuit node (writer/claim.cypher), which stays incomplete until writer/complete.cypher.
// $circuit holds no writeId or writer: those of the claim stay.
MERGE (m:Model {key: $model.key}) ON CREATE SET m += $model
MERGE (cl:Class {index: $target.index})
  ON CREATE SET cl += $target
  ON MATCH SET cl.wnid = coalesce(cl.wnid, $target.wnid)
MERGE (f:CircuitFamily {key: $family.key}) ON CREATE SET f += $family
WITH m, cl, f
MATCH (c:Circuit {id: $circuitId})
SET c += $circuit
MERGE (c)-[:OF_MODEL]->(m)
MERGE (c)-[:FOR_CLASS]->(cl)
MERGE (c)-[:IN_FAMILY]->(f)
