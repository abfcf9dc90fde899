// Labels read by labels/circuit-labels, written back on the same circuit's groups ($groups: {key, props, at})
// and group edges ($flows: {lower, upper, props, at}). Returns how many were written.
CALL () {
  UNWIND $groups AS r
  MATCH (g:NeuronGroup {key: r.key})
  SET g += r.props, g.labelledAt = CASE WHEN r.at IS NULL THEN null ELSE datetime(r.at) END
  RETURN count(g) AS groups
}
CALL () {
  UNWIND $flows AS r
  MATCH (:NeuronGroup {key: r.lower})-[f:FLOWS_TO {circuitId: $circuitId}]->(:NeuronGroup {key: r.upper})
  SET f += r.props, f.evolutionAt = CASE WHEN r.at IS NULL THEN null ELSE datetime(r.at) END
  RETURN count(f) AS flows
}
RETURN groups + flows AS written
