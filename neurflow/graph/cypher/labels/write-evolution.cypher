// A feature evolution on every (lower)-[:FLOWS_TO]->(upper) edge of one request ($rows: one per lower group,
// {lower: key, match, matched, features}). Returns how many edges were written.
UNWIND $rows AS r
MATCH (lower:NeuronGroup {key: r.lower})-[f:FLOWS_TO {circuitId: $circuitId}]->(upper:NeuronGroup {key: $upper})
SET f.evolutionCaption = $caption, f.evolutionMatch = r.match, f.evolutionMatched = r.matched,
    f.evolutionLowerFeatures = r.features, f.evolutionUpperFeatures = $upperFeatures,
    f.evolutionFeatures = $features, f.evolutionMatches = $matches, f.evolutionGroups = $groups,
    f.evolutionModel = $model, f.evolutionPromptVersion = $promptVersion, f.evolutionAt = datetime($at),
    f.evolutionRaw = $raw, f.evolutionRequest = $requestKey
RETURN count(f) AS written
