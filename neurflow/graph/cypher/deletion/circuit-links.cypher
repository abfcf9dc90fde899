// The links of a Circuit node to its parts and shared nodes (core neurons, images, logit, groups), deleted when
// its node is kept for a new write (a taken-over or forced ingestion). Links to it from experiments stay.
MATCH (c:Circuit {id: $id})-[r:HAS_CORE_NEURON|HAS_IMAGE|HAS_LOGIT|HAS_GROUP]->()
DELETE r
RETURN count(r) AS deleted
