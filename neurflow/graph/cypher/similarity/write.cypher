// SIMILAR_TO from a completing circuit to the complete circuits of the other classes of its family: rows
// {other, props} (neurflow.graph.similarity). Created, not merged: this runs only in the transaction completing
// the circuit, which has none yet (a taken-over or forced write deleted its old ones; a retried completion finds
// the circuit complete and stops before). `ensured` counts the rows whose circuit exists.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MATCH (o:Circuit {id: r.other})
CREATE (c)-[s:SIMILAR_TO]->(o)
SET s = r.props
RETURN count(s) AS ensured
