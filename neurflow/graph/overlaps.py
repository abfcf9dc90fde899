"""OVERLAPS: which neuron groups of a completing circuit share enough member neurons with groups of other classes.

Groups below the logit of the complete circuits of the other classes of the same model, in the same layer (their
members are of one layer, so a shared member means a shared layer), get an edge when the Jaccard index of their
member sets is at least :data:`~neurflow.graph.schema.OVERLAP_MIN_JACCARD` (recorded on the DataModel node).
Counted at once for every pair as a sparse product (other groups x neurons) @ (neurons x this circuit's groups),
from the groups' member lists (:mod:`neurflow.graph.circuit_vectors`): at 1,000 classes a circuit's groups
share a member neuron with other groups 469 k times, which Cypher took 0.5 s to count from the member links.

>>> from neurflow.graph.circuit_vectors import GroupLists
>>> mine = GroupLists(["a"], np.array([0.5]), np.array([3]), np.array([1, 2, 3]))
>>> other = GroupLists(["x", "y"], np.array([0.2, 0.9]), np.array([2, 2]), np.array([2, 3, 7, 8]))
>>> overlap_rows("c", mine, {"o": other}, 0.2)   # a ~ x: 2 shared of 3 in all
[['c|a', 'o|x', 0.6666666666666666, 2, 0.2]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from neurflow.graph.circuit_vectors import GroupLists
from neurflow.graph.rows import scoped_key


def overlap_rows(circuit_id: str, mine: GroupLists, others: dict[str, GroupLists],
                 min_jaccard: float) -> list[list[Any]]:
    """OVERLAPS rows ``[group key, other group key, jaccard, shared neurons, smaller influence]`` from the groups
    of circuit ``circuit_id`` (``mine``) to those of ``others`` (circuit id -> groups)."""
    if not mine.ids or not others:
        return []
    codes, position = np.unique(mine.members, return_inverse=True)
    owner = np.repeat(np.arange(len(mine.ids)), mine.sizes)
    # neurons x my groups: which of my groups holds each neuron
    held = sparse.csr_matrix((np.ones(len(owner)), (position, owner)), shape=(len(codes), len(mine.ids)))
    ids = sorted(others)
    group_ids = [(cid, gid) for cid in ids for gid in others[cid].ids]
    members = np.concatenate([others[cid].members for cid in ids])
    sizes = np.concatenate([others[cid].sizes for cid in ids])
    influence = np.concatenate([others[cid].influence for cid in ids])
    row = np.repeat(np.arange(len(group_ids)), sizes)
    at = np.searchsorted(codes, members).clip(max=len(codes) - 1)
    known = codes[at] == members
    other_has = sparse.csr_matrix((np.ones(int(known.sum())), (row[known], at[known])),
                                  shape=(len(group_ids), len(codes)))
    shared = sparse.coo_matrix(other_has @ held)  # other group x my group: member neurons in common
    counts = np.rint(shared.data).astype(np.int64)
    jaccard = counts / (mine.sizes[shared.col] + sizes[shared.row] - counts)
    keep = jaccard >= min_jaccard  # judged for every pair at once: ~30 k pairs share a neuron at 1,000 classes
    theirs, my, counts, jaccard = shared.row[keep], shared.col[keep], counts[keep], jaccard[keep]
    smaller = np.minimum(mine.influence[my], influence[theirs])
    result = [[scoped_key(circuit_id, mine.ids[g]), scoped_key(*group_ids[h]), j, n, s]
              for h, g, j, n, s in zip(theirs.tolist(), my.tolist(), jaccard.tolist(), counts.tolist(),
                                       smaller.tolist(), strict=True)]
    return sorted(result)
