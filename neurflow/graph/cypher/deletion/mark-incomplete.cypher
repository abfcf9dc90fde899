// The first step of deleting a circuit: hidden from queries at once, and claimed for the deletion ($writeId),
// so an ingestion attempt still writing it stops at its next batch. Returns what the later steps need.
MATCH (c:Circuit {id: $id}) SET c.complete = false, c.writeId = $writeId
WITH c
OPTIONAL MATCH (c)-[:HAS_IMAGE]->(i:Image)
WITH c, collect(DISTINCT i.sha256) AS images
OPTIONAL MATCH (c)-[:HAS_CORE_NEURON]->(n:Neuron)
RETURN count(DISTINCT c) AS circuits, images, c.familyKey AS family, c.modelKey AS model, c.classIndex AS classIndex,
       collect(DISTINCT n.key) AS neurons
