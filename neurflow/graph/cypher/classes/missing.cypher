// The values of a named query's class parameters that name no Class node, by the rule the named queries use
// (index as text, name case-insensitive, or wnid).
UNWIND $values AS value
OPTIONAL MATCH (cl:Class)
WHERE toString(cl.index) = value OR toLower(cl.name) = toLower(value) OR cl.wnid = value
WITH value, count(cl) AS found
WHERE found = 0
RETURN value
