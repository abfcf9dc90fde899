// The newest complete circuit of each class of a family (what the cross-class queries compare): their ids.
MATCH (o:Circuit {familyKey: $family})
WHERE o.complete
WITH o ORDER BY o.ingestedAt DESC, o.id
WITH o.classIndex AS index, collect(o.id)[0] AS id
RETURN collect(id) AS ids
