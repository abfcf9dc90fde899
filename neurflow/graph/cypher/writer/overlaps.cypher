// OVERLAPS from this circuit's groups to groups of other classes: rows [group key, other key, jaccard, shared,
// smaller influence] (neurflow.graph.overlaps). Merged (idempotent); `ensured` counts the rows whose two groups
// exist.
UNWIND $rows AS r
MATCH (a:NeuronGroup {key: r[0]})
MATCH (b:NeuronGroup {key: r[1]})
MERGE (a)-[o:OVERLAPS]->(b)
SET o.jaccard = r[2], o.shared = r[3], o.smallerInfluence = r[4], o.circuitId = $circuitId
RETURN count(o) AS ensured
