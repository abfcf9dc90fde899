// Feature evolutions carried over to the rewritten circuit's group edges: rows {lower, upper, props}.
UNWIND $rows AS r
MATCH (:NeuronGroup {key: r.lower})-[f:FLOWS_TO]->(:NeuronGroup {key: r.upper})
SET f += r.props
RETURN count(f) AS carried
