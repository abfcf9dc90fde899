// Group edges, lower group -> upper group: rows [lower key, upper key, weight, share, influence,
// influenceBefore].
UNWIND $rows AS r
MATCH (a:NeuronGroup {key: r[0]})
MATCH (b:NeuronGroup {key: r[1]})
CREATE (a)-[:FLOWS_TO {weight: r[2], share: r[3], influence: r[4], influenceBefore: r[5], circuitId: $circuitId,
                      weightLabel: toString(round(r[2], 3)),  // Browser's caption
                      influenceLabel: toString(round(r[4], 3))}]->(b)
