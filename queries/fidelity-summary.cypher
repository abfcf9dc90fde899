// name: fidelity-summary
// description: A fidelity study (`neurflow fidelity`, the paper's Figure 5), the newest unless named: per layer
//   and setting (single layer or every layer from the logit down; mask or retain), the accuracy relative to
//   the unmasked model with the core neurons, against as many random neurons, averaged over the study's
//   classes whose circuits are complete. ablation: how masked neurons were set (zero, or their mean).
//   evidence: held-out (the classes' images their circuits were not built on) or in-sample (the circuits' own
//   images, where the core neurons were chosen); images: summed over the classes; coreLow/coreHigh: the mean
//   of the classes' 95 % Wilson intervals of the core accuracy, relative to the unmasked accuracy; pValue: the
//   mean of the classes' p-values against their random draws. classCount: how many classes; classes: their names.
// param: model (string, default null) model name or key (name@weightsId); default: any model
// param: study (string, default null) study id; default: the newest study
// param: class (string, default null) only this class (name, index or wnid); default: every class of the study
MATCH (s:FidelityStudy)
WHERE ($model IS NULL OR s.modelKey = $model OR s.modelName = $model) AND ($study IS NULL OR s.id = $study)
WITH s ORDER BY s.createdAt DESC, s.id LIMIT 1
MATCH (s)-[:HAS_RESULT]->(r:FidelityResult)
MATCH (c:Circuit {id: r.circuitId})
WHERE c.complete
  AND ($class IS NULL OR toString(r.classIndex) = $class OR toLower(r.className) = toLower($class)
       OR EXISTS { MATCH (c)-[:FOR_CLASS]->(:Class {wnid: $class}) })
RETURN s.id AS study, toString(s.createdAt) AS created, coalesce(s.ablation, 'zero') AS ablation,
       coalesce(r.evidence, 'in-sample') AS evidence, r.layer AS layer, r.depth AS depth, r.scope AS scope,
       r.mode AS mode, count(r) AS classCount, collect(r.className) AS classes, sum(r.images) AS images, round(avg(r.neurons), 1) AS neurons,
       avg(r.coreRelative) AS coreRelative,
       avg(r.coreAccuracyLow / CASE WHEN r.baseAccuracy > 0 THEN r.baseAccuracy END) AS coreLow,
       avg(r.coreAccuracyHigh / CASE WHEN r.baseAccuracy > 0 THEN r.baseAccuracy END) AS coreHigh,
       avg(r.randomRelative) AS randomRelative, avg(r.randomRelativeStd) AS randomSpread, avg(r.pValue) AS pValue
ORDER BY evidence, depth, scope DESC, mode
