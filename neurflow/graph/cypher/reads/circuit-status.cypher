// Whether a circuit is in the graph, and complete.
MATCH (c:Circuit {id: $id}) RETURN c.complete AS complete
