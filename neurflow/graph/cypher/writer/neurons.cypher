// The model's neurons this circuit uses (shared by every circuit of the model, merged).
UNWIND $rows AS r
MERGE (n:Neuron {key: r.key}) ON CREATE SET n.model = r.model, n.layer = r.layer, n.channel = r.channel
WITH n, r
MATCH (l:Layer {key: r.layerKey})
MERGE (l)-[:HAS_NEURON]->(n)
