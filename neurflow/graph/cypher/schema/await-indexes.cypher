// Waits (up to 300 s) until every index is online, so the first writes and reads can use them.
CALL db.awaitIndexes(300)
