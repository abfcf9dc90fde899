// Uniqueness constraints of the graph model (docs/graph-model.md), one statement each, run by ensure_schema.
// Each key is also what the writer MERGEs and MATCHes on, so these constraints are its lookup indexes.
CREATE CONSTRAINT data_model_name IF NOT EXISTS FOR (n:DataModel) REQUIRE n.name IS UNIQUE;
CREATE CONSTRAINT model_key IF NOT EXISTS FOR (n:Model) REQUIRE n.key IS UNIQUE;
CREATE CONSTRAINT layer_key IF NOT EXISTS FOR (n:Layer) REQUIRE n.key IS UNIQUE;
CREATE CONSTRAINT neuron_key IF NOT EXISTS FOR (n:Neuron) REQUIRE n.key IS UNIQUE;
CREATE CONSTRAINT class_index IF NOT EXISTS FOR (n:Class) REQUIRE n.index IS UNIQUE;
CREATE CONSTRAINT circuit_id IF NOT EXISTS FOR (n:Circuit) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT semantic_group_key IF NOT EXISTS FOR (n:SemanticGroup) REQUIRE n.key IS UNIQUE;
CREATE CONSTRAINT neuron_group_key IF NOT EXISTS FOR (n:NeuronGroup) REQUIRE n.key IS UNIQUE;
CREATE CONSTRAINT patch_key IF NOT EXISTS FOR (n:Patch) REQUIRE n.key IS UNIQUE;
CREATE CONSTRAINT image_sha256 IF NOT EXISTS FOR (n:Image) REQUIRE n.sha256 IS UNIQUE;
CREATE CONSTRAINT validation_study_id IF NOT EXISTS FOR (n:ValidationStudy) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT circuit_family_key IF NOT EXISTS FOR (n:CircuitFamily) REQUIRE n.key IS UNIQUE;
