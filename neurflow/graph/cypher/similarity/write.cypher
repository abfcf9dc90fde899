// SIMILAR_TO from a completing circuit to the complete circuits of the other classes of its family: rows
// {other, props} (neurflow.graph.similarity). Merged (idempotent); `ensured` counts the rows whose circuit exists.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MATCH (o:Circuit {id: r.other})
MERGE (c)-[s:SIMILAR_TO]->(o)
SET s += r.props
RETURN count(s) AS ensured
