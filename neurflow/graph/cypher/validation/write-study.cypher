// A ValidationStudy (`neurflow validate ...`) linked to the circuit it validates and to the Layer node of each
// studied layer ($props.layers: names; the circuit's model key makes the Layer key). No row back: the circuit is
// not in the graph. `linked` counts the layers found, so the caller can refuse (roll back) a study whose layers
// are not the circuit's.
MATCH (c:Circuit {id: $props.circuitId})
CREATE (v:ValidationStudy) SET v = $props, v.modelKey = c.modelKey, v.createdAt = datetime()
CREATE (v)-[:VALIDATES]->(c)
WITH v, c
CALL (v, c) {
  UNWIND $props.layers AS name
  MATCH (l:Layer {key: c.modelKey + '|' + name})
  CREATE (v)-[:ON_LAYER]->(l)
  RETURN count(l) AS linked
}
RETURN v.id AS id, linked
