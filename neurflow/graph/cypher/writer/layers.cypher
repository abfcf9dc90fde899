// The model's layers (shared by every circuit of the model, merged).
UNWIND $rows AS r
MATCH (m:Model {key: r.model})
// layout: where the layer keeps its neurons (channels-first, channels-last, tokens); set on Layer nodes written
// before graph model 1.3 too.
MERGE (l:Layer {key: r.key}) ON CREATE SET l.model = r.model, l.name = r.name, l.depth = r.depth, l.layout = r.layout
  ON MATCH SET l.layout = coalesce(l.layout, r.layout)
MERGE (m)-[:HAS_LAYER]->(l)
