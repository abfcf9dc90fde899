"""How much of a target's attribution its core set carries, from what one layer step computed already.

For a target a with concept V_a and the integrated gradients T(a, s) = sum over V_a of a's attribution to the
lower neuron s (every lower neuron, not only the core ones):

- ``core_share`` = sum over core s of |T(a, s)| / sum over all lower s of |T(a, s)|: the part of a's attribution
  (in absolute value) the circuit keeps;
- ``signed_share`` = sum over core s of T(a, s) / sum over V_a of (f_a(h_p) - f_a(0)): the part of a's change from
  the zero baseline the core set accounts for, signs kept (inhibitory core neurons lower it; above 1 when the
  neurons left out push the other way);
- ``completeness_gap``: how far the integration is from exact (:func:`~neurflow.engine.integration.completeness_gap`).

>>> per_patch = np.array([[3.0, -1.0, 0.5], [1.0, 0.0, 0.5]])   # 2 patches of V_a, 3 lower neurons
>>> c = target_coverage("up", 0, "low", per_patch, np.array([0]), np.array([2.5, 1.5]))
>>> round(c.core_share, 3), round(c.signed_share, 3), round(c.completeness_gap, 3)
(0.667, 1.0, 0.0)
"""

from __future__ import annotations

import numpy as np

from neurflow.circuit import TargetCoverage
from neurflow.engine.integration import completeness_gap_ratio as completeness_gap


def target_coverage(layer: str, channel: int, lower_layer: str, per_patch: np.ndarray, core: np.ndarray,
                    deltas: np.ndarray) -> TargetCoverage:
    """The coverage of one target from its [|V_a|, lower neurons] attributions, its core set (lower neuron
    indices) and its [|V_a|] output changes f_a(h_p) - f_a(0)."""
    totals = per_patch.sum(0)
    attribution = float(np.abs(totals).sum())
    change = float(np.sum(deltas))
    core_signed = float(totals[core].sum())
    return TargetCoverage(
        layer=layer,
        channel=int(channel),
        lower_layer=lower_layer,
        core_share=float(np.abs(totals[core]).sum()) / attribution if attribution > 0 else float("nan"),
        signed_share=core_signed / change if change != 0 else float("nan"),
        attribution=attribution,
        output_change=change,
        completeness_gap=completeness_gap(per_patch, deltas),
    )
