// Relationships of one type ({type}: one of neurflow.graph.reads.RELATIONSHIP_TYPES), from the count store.
MATCH ()-[r:{type}]->() RETURN count(r) AS n
