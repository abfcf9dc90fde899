// The neurons a MaskingExperiment masked when it was given neurons, not groups (layers and neurons merged).
MATCH (e:MaskingExperiment {id: $id})
MATCH (m:Model {key: $modelKey})
UNWIND $neurons AS r
MERGE (l:Layer {key: r.layerKey}) ON CREATE SET l.model = $modelKey, l.name = r.layer
MERGE (m)-[:HAS_LAYER]->(l)
MERGE (n:Neuron {key: r.key}) ON CREATE SET n.model = $modelKey, n.layer = r.layer, n.channel = r.channel
MERGE (l)-[:HAS_NEURON]->(n)
CREATE (e)-[:MASKED]->(n)
RETURN count(n) AS linked
