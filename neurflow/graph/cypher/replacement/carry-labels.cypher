// Labels carried over to the rewritten circuit's groups: rows {key, label: map of label properties}.
UNWIND $rows AS r
MATCH (g:NeuronGroup {key: r.key})
SET g += r.label
RETURN count(g) AS carried
