// name: group-detail
// description: One neuron group in full (`neurflow serve`'s group page): its class, layer, influence, label and
//   caption; members (each neuron with the influence the group carries through it, largest first); patches
//   (every concept patch, strongest first: thumbnail URI, the image's sha256 and path, the box [x0, y0, x1, y1]
//   in the image, activation); reusedBy (the groups of other classes' circuits it OVERLAPS, by Jaccard overlap of
//   member neurons, largest first); evolution (what the feature-evolution labels say of each edge into the
//   group from below); experiments (the masking experiments that masked it, newest first).
// param: circuit (string, required) circuit id
// param: group (string, required) group id within the circuit, e.g. _blocks.14/g0
MATCH (c:Circuit {id: $circuit})-[:HAS_GROUP]->(g:NeuronGroup {groupId: $group})
RETURN c.className AS class, c.classIndex AS index, c.modelKey AS model, c.id AS circuit, g.groupId AS group,
       g.layer AS layer, g.depth AS depth, g.influence AS influence, g.signedInfluence AS signedInfluence,
       g.label AS label, g.caption AS caption, g.commonFeatures AS features,
       COLLECT { MATCH (g)-[m:HAS_MEMBER]->(n:Neuron)
                 RETURN {neuron: n.layer + ':' + n.channel, layer: n.layer, channel: n.channel,
                         influence: m.influence} AS member
                 ORDER BY m.influence DESC, n.channel } AS members,
       COLLECT { MATCH (g)-[:HAS_SEMANTIC_GROUP]->(:SemanticGroup)<-[e:EXEMPLIFIES]-(p:Patch)
                 WITH p, max(e.activation) AS activation
                 MATCH (p)-[:CROPPED_FROM]->(im:Image)
                 RETURN {key: p.key, thumbnail: p.thumbnailUri, image: im.sha256, path: im.path, label: im.label,
                         box: p.box, activation: activation} AS patch
                 ORDER BY activation DESC, p.key } AS patches,
       COLLECT { MATCH (g)-[o:OVERLAPS]-(h:NeuronGroup)<-[:HAS_GROUP]-(other:Circuit {complete: true})
                 WITH DISTINCT other, h, o.jaccard AS jaccard
                 RETURN {class: other.className, index: other.classIndex, circuit: other.id, group: h.groupId,
                         jaccard: jaccard, influence: h.influence} AS reuse
                 ORDER BY jaccard DESC, other.classIndex, h.groupId } AS reusedBy,
       COLLECT { MATCH (lower:NeuronGroup)-[f:FLOWS_TO]->(g)
                 WHERE f.evolutionCaption IS NOT NULL
                 RETURN {lower: lower.groupId, caption: f.evolutionCaption, match: f.evolutionMatch,
                         features: f.evolutionLowerFeatures} AS step
                 ORDER BY f.influence DESC } AS evolution,
       COLLECT { MATCH (e:MaskingExperiment)-[:MASKED]->(g)
                 RETURN {id: e.id, mode: e.mode, ablation: e.ablation, created: toString(e.createdAt),
                         accuracyBefore: e.accuracyBefore, accuracyAfter: e.accuracyAfter,
                         probChange: e.meanProbChange, randomProbChange: e.randomProbChangeMean} AS experiment
                 ORDER BY e.createdAt DESC } AS experiments
