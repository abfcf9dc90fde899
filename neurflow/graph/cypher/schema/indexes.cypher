// Range indexes of the graph model (docs/graph-model.md), one statement each, run by ensure_schema after the
// constraints.
CREATE INDEX semantic_group_circuit IF NOT EXISTS FOR (n:SemanticGroup) ON (n.circuitId);
CREATE INDEX neuron_group_circuit IF NOT EXISTS FOR (n:NeuronGroup) ON (n.circuitId);
CREATE INDEX circuit_complete IF NOT EXISTS FOR (n:Circuit) ON (n.complete);
CREATE INDEX circuit_model IF NOT EXISTS FOR (n:Circuit) ON (n.modelKey);
CREATE INDEX class_name IF NOT EXISTS FOR (n:Class) ON (n.name);
CREATE INDEX class_wnid IF NOT EXISTS FOR (n:Class) ON (n.wnid);
CREATE INDEX neuron_layer IF NOT EXISTS FOR (n:Neuron) ON (n.layer, n.channel);
// concept-reuse's group pairs: a range seek of the strong overlaps, not an expansion of every group's edges
CREATE INDEX overlaps_jaccard IF NOT EXISTS FOR ()-[o:OVERLAPS]-() ON (o.jaccard);
// like-with-like comparisons: the circuits of one family
CREATE INDEX circuit_family IF NOT EXISTS FOR (n:Circuit) ON (n.familyKey);
// search-concepts: group labels, captions and class names
CREATE FULLTEXT INDEX concept_text IF NOT EXISTS FOR (n:NeuronGroup|Class) ON EACH [n.label, n.caption, n.name];
// Search by image (neurflow.experiments.search_image): each group's representative vector, cosine; no fixed
// dimension, so one index serves every layer (a query vector meets only vectors of its own length); not
// quantized, so scores are float32 cosines (a few MB of vectors per 1,000 classes).
CREATE VECTOR INDEX group_vector IF NOT EXISTS FOR (g:NeuronGroup) ON g.vector
  OPTIONS {indexConfig: {`vector.similarity_function`: 'cosine', `vector.quantization.enabled`: false}};
// concept-reuse's group pairs (1.7): the strongest pairs read in index order
CREATE INDEX overlaps_smaller_influence IF NOT EXISTS FOR ()-[o:OVERLAPS]-() ON (o.smallerInfluence);
