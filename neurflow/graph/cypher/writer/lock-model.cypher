// Completions of circuits of one model take turns: this write lock on the Model node is held until the
// completing transaction commits, so its OVERLAPS and family totals see every circuit completed before it.
MATCH (m:Model {key: $model})
SET m.lastCompletionAt = datetime()
RETURN count(m) AS locked
