// The Circuit node itself, last.
MATCH (c:Circuit {id: $id}) DETACH DELETE c
