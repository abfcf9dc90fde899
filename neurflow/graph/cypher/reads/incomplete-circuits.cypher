// Circuits whose ingestion has not finished (or died).
MATCH (c:Circuit) WHERE NOT c.complete RETURN c.id AS id ORDER BY id
