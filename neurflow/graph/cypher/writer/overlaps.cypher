// Overlaps from this circuit's groups to groups of other classes: rows [group key, other key, jaccard, shared].
UNWIND $rows AS r
MATCH (a:NeuronGroup {key: r[0]})
MATCH (b:NeuronGroup {key: r[1]})
CREATE (a)-[:OVERLAPS {jaccard: r[2], shared: r[3], circuitId: $circuitId}]->(b)
