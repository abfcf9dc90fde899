// The circuit's Model, Class and CircuitFamily (shared by circuits, merged) and its Circuit node, written
// incomplete ($circuit.complete = false) until writer/complete.cypher.
MERGE (m:Model {key: $model.key}) ON CREATE SET m += $model
MERGE (cl:Class {index: $target.index})
  ON CREATE SET cl += $target
  ON MATCH SET cl.wnid = coalesce(cl.wnid, $target.wnid)
MERGE (f:CircuitFamily {key: $family.key}) ON CREATE SET f += $family
CREATE (c:Circuit) SET c = $circuit
CREATE (c)-[:OF_MODEL]->(m)
CREATE (c)-[:FOR_CLASS]->(cl)
CREATE (c)-[:IN_FAMILY]->(f)
