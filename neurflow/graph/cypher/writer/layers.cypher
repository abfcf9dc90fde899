// The model's layers (shared by every circuit of the model, merged).
UNWIND $rows AS r
MATCH (m:Model {key: r.model})
MERGE (l:Layer {key: r.key}) ON CREATE SET l.model = r.model, l.name = r.name, l.depth = r.depth
MERGE (m)-[:HAS_LAYER]->(l)
