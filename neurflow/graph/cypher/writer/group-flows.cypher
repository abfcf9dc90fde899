// Group edges, lower group -> upper group: rows [lower key, upper key, weight, share, influence,
// influenceBefore]. Merged (idempotent); `ensured` counts the rows whose two groups exist.
UNWIND $rows AS r
MATCH (a:NeuronGroup {key: r[0]})
MATCH (b:NeuronGroup {key: r[1]})
MERGE (a)-[f:FLOWS_TO]->(b)
SET f += {weight: r[2], share: r[3], influence: r[4], influenceBefore: r[5], circuitId: $circuitId,
          weightLabel: toString(round(r[2], 3)),  // Browser's caption
          influenceLabel: toString(round(r[4], 3))}
RETURN count(f) AS ensured
