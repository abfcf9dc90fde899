// The complete circuits of the other classes of a model, with the write id of each (a rewrite changes it, so a
// process's cached vectors of a circuit are used only while they are the graph's).
MATCH (o:Circuit {modelKey: $model})
WHERE o.complete AND o.classIndex <> $classIndex
RETURN o.id AS id, o.writeId AS writeId
