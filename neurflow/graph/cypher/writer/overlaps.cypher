// OVERLAPS from this circuit's groups to groups of other classes: rows [group key, other key, jaccard, shared,
// smaller influence] (neurflow.graph.overlaps). Created, not merged: this runs only in the transaction completing
// the circuit, whose groups are new and have none yet (a retried completion finds the circuit complete and stops
// before). `ensured` counts the rows whose two groups exist.
UNWIND $rows AS r
MATCH (a:NeuronGroup {key: r[0]})
MATCH (b:NeuronGroup {key: r[1]})
CREATE (a)-[o:OVERLAPS {jaccard: r[2], shared: r[3], smallerInfluence: r[4], circuitId: $circuitId}]->(b)
RETURN count(o) AS ensured
