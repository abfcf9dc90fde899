// The circuit's core neurons, with their depth, incoming weight, influence, coverage (of a target: the share of
// its attribution its core set carries; of every neuron: the logit's attribution reaching it) and activation.
// Merged, so a batch
// run twice (a retried commit) leaves one relationship each; `ensured` counts the rows whose neuron exists.
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MATCH (n:Neuron {key: r.neuron})
MERGE (c)-[x:HAS_CORE_NEURON]->(n)
SET x += {layer: r.layer, depth: r.depth, weight: r.weight, influence: r.influence,
          influenceBefore: r.influenceBefore, influenceLabel: r.influenceLabel, maxActivation: r.maxActivation,
          signedInfluence: r.signedInfluence, parents: r.parents, reach: r.reach,
          absoluteInfluence: r.absoluteInfluence, coreShare: r.coreShare,
          signedShare: r.signedShare, completenessGap: r.completenessGap, attribution: r.attribution,
          selectionFrequency: r.selectionFrequency, splitSilhouette: r.splitSilhouette,
          splitStability: r.splitStability,
          circuitId: $circuitId}
RETURN count(x) AS ensured
