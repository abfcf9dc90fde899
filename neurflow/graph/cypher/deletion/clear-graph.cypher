// Every node and relationship of the database (indexes and constraints stay), in batched transactions.
MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS
