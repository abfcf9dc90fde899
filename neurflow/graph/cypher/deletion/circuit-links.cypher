// The links of a Circuit node to its parts and shared nodes (core neurons, images, logit, groups) and its
// SIMILAR_TO with other circuits, deleted when its node is kept for a new write (a taken-over or forced
// ingestion). Links to it from experiments stay.
MATCH (c:Circuit {id: $id})
CALL (c) {
  MATCH (c)-[s:SIMILAR_TO]-()
  DELETE s
}
MATCH (c)-[r:HAS_CORE_NEURON|HAS_IMAGE|HAS_LOGIT|HAS_GROUP]->()
DELETE r
RETURN count(r) AS deleted
