"""Transparent marker indices: how often the session's utterances carry each alliance marker.

An index needs no ratings and means the same in every lab: the expected number of utterances per 100
that carry the marker (the mean calibrated probability x 100), over all utterances and per role.

- `goal`, `task`, `bond`: the subscale's own marker.
- `rupture`: withdrawal or confrontation (the sum of the two probabilities, so a strongly mixed
  utterance can count twice: it is an expected count of rupture markers).
- `repair`: the repair marker.

Each comes with a 95% percentile interval from a cluster bootstrap over blocks of consecutive turns:
the uncertainty from the finite number of utterances in this session, nothing else (the prediction
interval for a rating is the WAI estimate's, in `alliance_nlp.aggregate`).
"""

from __future__ import annotations

import numpy as np

from .labels import LABELS
from .session import MarkerIndex
from .stats import cluster_bootstrap_counts, percentile_interval

ROLES = ("therapist", "client")
INDICES: dict[str, tuple[str, ...]] = {
    "goal": ("goal",),
    "task": ("task",),
    "bond": ("bond",),
    "rupture": ("rupture_withdrawal", "rupture_confrontation"),
    "repair": ("repair",),
}


def _per100(P: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """Per utterance: expected markers of the index (0-2 for rupture, 0-1 otherwise), x 100."""
    return 100.0 * P[:, [LABELS.index(lab) for lab in labels]].sum(axis=1)


def marker_indices(
    P: np.ndarray, roles: np.ndarray, clusters: np.ndarray, n_boot: int = 200, seed: int = 0
) -> dict[str, MarkerIndex]:
    """Indices with intervals for one stretch of talk; `clusters` (one id per utterance, 0..k-1) are
    the blocks the bootstrap resamples."""
    if len(P) == 0:
        return {k: MarkerIndex(None, None, None, None, None) for k in INDICES}
    clusters = np.asarray(clusters)
    n_clusters = int(clusters.max()) + 1
    W = cluster_bootstrap_counts(n_clusters, n_boot, seed).astype(float) if n_clusters >= 2 and n_boot else None
    counts = np.bincount(clusters, minlength=n_clusters).astype(float)
    out = {}
    for name, labels in INDICES.items():
        x = _per100(P, labels)
        by_role = {r: (float(x[roles == r].mean()) if (roles == r).any() else None) for r in ROLES}
        low = high = None
        if W is not None:
            sums = np.bincount(clusters, weights=x, minlength=n_clusters)
            n = W @ counts
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = np.where(n > 0, (W @ sums) / n, np.nan)
            low, high = percentile_interval(boot)
        out[name] = MarkerIndex(
            round(float(x.mean()), 2),
            None if low is None else round(low, 2),
            None if high is None else round(high, 2),
            None if by_role["therapist"] is None else round(by_role["therapist"], 2),
            None if by_role["client"] is None else round(by_role["client"], 2),
        )
    return out
