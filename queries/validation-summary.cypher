// name: validation-summary
// description: Validation studies (`neurflow validate correlation|optimality|k-sensitivity|crops`: the paper's
//   Figures 6, 4, 18 and Table 5), newest first: the circuit and layers studied, the ablation, the summary
//   figures (name = value, 4 decimals) and the CSV and PNG files. Studies of circuits that are incomplete or
//   gone are left out.
// param: class (string, default null) class name, index or wnid; default: every class
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: study (string, default null) correlation, optimality, k-sensitivity or crops; default: every study
// param: limit (int, default 20) studies
MATCH (v:ValidationStudy)-[:VALIDATES]->(c:Circuit {complete: true})-[:FOR_CLASS]->(cl:Class)
WHERE ($class IS NULL OR toString(cl.index) = $class OR toLower(cl.name) = toLower($class) OR cl.wnid = $class)
  AND ($model IS NULL OR c.modelKey = $model OR c.modelName = $model)
  AND ($study IS NULL OR v.study = $study)
RETURN v.id AS id, v.study AS study, toString(v.createdAt) AS created, c.modelKey AS model, cl.name AS class,
       c.id AS circuit, v.layers AS layers, v.ablation AS ablation,
       [i IN range(0, size(coalesce(v.summaryNames, [])) - 1)
        | v.summaryNames[i] + ' = ' + toString(round(v.summaryValues[i], 4))] AS summary,
       v.csvPath AS csv, v.pngPath AS png
ORDER BY v.createdAt DESC, v.id
LIMIT $limit
