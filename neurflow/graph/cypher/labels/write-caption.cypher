// A group caption on its NeuronGroup node (labelRaw: the raw answer when it did not parse, else null;
// depicts: object, context or background, null when the answer did not say).
// Returns how many nodes were written: 0 when the group is not in the graph.
MATCH (g:NeuronGroup {key: $key})
SET g.label = $label, g.caption = $caption, g.commonFeatures = $features, g.labelModel = $model,
    g.labelPromptVersion = $promptVersion, g.labelledAt = datetime($at), g.labelRaw = $raw,
    g.labelRequest = $requestKey, g.depicts = $depicts
RETURN count(g) AS written
