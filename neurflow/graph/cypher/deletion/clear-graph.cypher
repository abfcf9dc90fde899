// Every relationship, then every node of the database (indexes and constraints stay), in batched transactions:
// relationships first, so that no transaction deletes a dense node with its thousands of relationships at once
// (a DETACH DELETE of 1,000 Neuron nodes of a 100-class graph ran out of the server's transaction memory).
MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS;
MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 10000 ROWS;
