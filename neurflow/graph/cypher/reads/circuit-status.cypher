// Whether a circuit is in the graph, complete, and written with influence and a family (graph model 1.1 on).
MATCH (c:Circuit {id: $id}) RETURN c.complete AS complete, c.familyKey IS NOT NULL AS current
