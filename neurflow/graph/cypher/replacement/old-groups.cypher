// What users added to a circuit's neuron groups before a forced rewrite: LLM labels (properties written by
// labels/write-caption.cypher) and the masking experiments that masked each group, with the group's members
// (a label is carried over only to a group with the same id and the same members).
MATCH (c:Circuit {id: $circuitId})-[:HAS_GROUP]->(g:NeuronGroup)
RETURN g.groupId AS groupId, [(g)-[:HAS_MEMBER]->(n:Neuron) | n.key] AS members,
       CASE WHEN g.label IS NULL AND g.caption IS NULL THEN null
            ELSE g {.label, .caption, .commonFeatures, .labelModel, .labelPromptVersion, .labelledAt, .labelRaw,
                    .labelRequest, .depicts} END AS label,
       [(e)-[:MASKED]->(g) | elementId(e)] AS maskedBy
