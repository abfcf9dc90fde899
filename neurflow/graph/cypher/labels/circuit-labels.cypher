// Every label a circuit's groups and group edges carry (captions on NeuronGroup, feature evolutions on FLOWS_TO),
// for an export that restores them (labels/restore-labels). Times as ISO text.
MATCH (c:Circuit {id: $id})-[:HAS_GROUP]->(g:NeuronGroup)
WHERE g.labelledAt IS NOT NULL OR g.label IS NOT NULL OR g.caption IS NOT NULL
RETURN 'group' AS kind, g.groupId AS group, null AS upper,
       {label: g.label, caption: g.caption, commonFeatures: g.commonFeatures, labelModel: g.labelModel,
        labelPromptVersion: g.labelPromptVersion, labelRaw: g.labelRaw, labelRequest: g.labelRequest,
        depicts: g.depicts} AS props, toString(g.labelledAt) AS at
UNION ALL
MATCH (c:Circuit {id: $id})-[:HAS_GROUP]->(a:NeuronGroup)-[f:FLOWS_TO]->(b:NeuronGroup)
WHERE f.evolutionAt IS NOT NULL OR f.evolutionCaption IS NOT NULL
RETURN 'flow' AS kind, a.groupId AS group, b.groupId AS upper,
       {evolutionCaption: f.evolutionCaption, evolutionMatch: f.evolutionMatch, evolutionMatched: f.evolutionMatched,
        evolutionLowerFeatures: f.evolutionLowerFeatures, evolutionUpperFeatures: f.evolutionUpperFeatures,
        evolutionFeatures: f.evolutionFeatures, evolutionMatches: f.evolutionMatches,
        evolutionGroups: f.evolutionGroups, evolutionModel: f.evolutionModel,
        evolutionPromptVersion: f.evolutionPromptVersion, evolutionRaw: f.evolutionRaw,
        evolutionRequest: f.evolutionRequest} AS props, toString(f.evolutionAt) AS at
