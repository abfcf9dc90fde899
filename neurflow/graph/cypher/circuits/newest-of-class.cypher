// The rule for "the circuit of a class", used by every command and named query: the complete circuits of the
// class, of a model given by name or key (name@weightsId; null: any model), newest ingestion first, ties by id.
MATCH (c:Circuit {complete: true})
WHERE c.classIndex = $classIndex AND ($model IS NULL OR c.modelKey = $model OR c.modelName = $model)
RETURN c.id AS id, c.modelKey AS modelKey, c.classIndex AS classIndex, c.className AS className,
       c.layers AS layers, c.folder AS folder, toString(c.createdAt) AS created,
       toString(c.ingestedAt) AS ingested, c.paramsJson AS params, c.complete AS complete
ORDER BY c.ingestedAt DESC, c.id
