// Nodes of one label ({label}: one of neurflow.graph.reads.LABELS), from the count store.
MATCH (n:{label}) RETURN count(n) AS n
