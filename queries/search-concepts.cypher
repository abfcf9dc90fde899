// name: search-concepts
// description: Full-text search of concept labels: neuron groups whose LLM label or caption (`neurflow label`)
//   and classes whose name match the words of text (the concept_text index; any word matches, more matches
//   and rarer words score higher). text is taken as plain words: Lucene's operators and special characters in
//   it (: ( ) " * ? ~ ^ - + ! & | [ ] { } / \ AND OR NOT) are escaped, so "dog:" or "(fur" search for the
//   words. Rows of groups come from complete circuits only, each with its class, circuit, influence and
//   strongest concept patches; a class is listed with its newest complete circuit (it has none: not listed).
//   Ranked by score, best first.
// param: text (string, required) words to look for in group labels, captions and class names
// param: limit (int, default 10) rows
// param: thumbnails (int, default 4) thumbnail URIs per group, strongest patch first
// param: model (string, default null) model name or key (name@weightsId); default: any model
WITH reduce(q = toLower($text), ch IN ['\\', '+', '-', '!', '(', ')', '{', '}', '[', ']', '^', '"', '~', '*', '?',
                                         ':', '/', '&', '|'] | replace(q, ch, '\\' + ch)) AS query
WHERE trim(query) <> ''
CALL db.index.fulltext.queryNodes('concept_text', query) YIELD node, score
CALL (node) {
  WITH node WHERE node:NeuronGroup
  MATCH (c:Circuit {id: node.circuitId})
  WHERE c.complete AND ($model IS NULL OR c.modelKey = $model OR c.modelName = $model)
  RETURN 'group' AS kind, node.className AS class, node.groupId AS group, node.label AS label,
         node.caption AS caption, node.influence AS influence, c.id AS circuit
  UNION ALL
  WITH node WHERE node:Class
  MATCH (c:Circuit {complete: true})-[:FOR_CLASS]->(node)
  WHERE $model IS NULL OR c.modelKey = $model OR c.modelName = $model
  WITH node, c ORDER BY c.ingestedAt DESC, c.id LIMIT 1
  RETURN 'class' AS kind, node.name AS class, null AS group, null AS label, null AS caption, null AS influence,
         c.id AS circuit
}
WITH node, score, kind, class, group, label, caption, influence, circuit
ORDER BY score DESC, kind, class, group
LIMIT $limit
CALL (node, kind) {
  OPTIONAL MATCH (node)-[:HAS_SEMANTIC_GROUP]->(:SemanticGroup)<-[e:EXEMPLIFIES]-(p:Patch)
  WHERE kind = 'group' AND e.rank < $thumbnails
  WITH p, max(e.activation) AS activation
  ORDER BY activation DESC, p.key
  LIMIT $thumbnails
  RETURN collect(p.thumbnailUri) AS thumbnails
}
RETURN kind, score, class, group, label, caption, influence, circuit, thumbnails
ORDER BY score DESC, kind, class, group
