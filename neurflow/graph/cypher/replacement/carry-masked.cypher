// MASKED links of experiments carried over to the rewritten circuit's groups: rows {experiment: elementId,
// group: key}. Element ids are only used inside the one transaction that read them.
UNWIND $rows AS r
MATCH (e) WHERE elementId(e) = r.experiment
MATCH (g:NeuronGroup {key: r.group})
MERGE (e)-[m:MASKED]->(g)
RETURN count(m) AS carried
