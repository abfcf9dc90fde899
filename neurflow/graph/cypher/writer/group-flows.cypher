// Group edges, lower group -> upper group: rows [lower key, upper key, weight, share].
UNWIND $rows AS r
MATCH (a:NeuronGroup {key: r[0]})
MATCH (b:NeuronGroup {key: r[1]})
CREATE (a)-[:FLOWS_TO {weight: r[2], share: r[3], circuitId: $circuitId,
                      weightLabel: toString(round(r[2], 3))}]->(b)  // Browser's caption
