// First step of a deletion: queries stop seeing the circuit at once; returns its images' sha256, its family
// and its core neurons (whose family totals are refreshed once it is gone).
MATCH (c:Circuit {id: $id}) SET c.complete = false
WITH c
OPTIONAL MATCH (c)-[:HAS_IMAGE]->(i:Image)
WITH c, collect(DISTINCT i.sha256) AS images
OPTIONAL MATCH (c)-[:HAS_CORE_NEURON]->(n:Neuron)
RETURN count(DISTINCT c) AS circuits, images, c.familyKey AS family, collect(DISTINCT n.key) AS neurons
