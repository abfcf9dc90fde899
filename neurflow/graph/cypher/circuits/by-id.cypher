// A circuit by id, whether complete or not (the caller checks).
MATCH (c:Circuit {id: $id})
RETURN c.id AS id, c.modelKey AS modelKey, c.classIndex AS classIndex, c.className AS className,
       c.layers AS layers, c.folder AS folder, toString(c.createdAt) AS created,
       toString(c.ingestedAt) AS ingested, c.paramsJson AS params, c.complete AS complete
