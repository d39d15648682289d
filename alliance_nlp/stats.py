"""Resampling shared by session intervals and evaluation: the cluster bootstrap.

Utterances within a session (and sessions within a test set) are not independent, so intervals
resample whole clusters (blocks of turns; sessions). A resample is a vector of counts, one per
cluster, summing to the number of clusters: statistics that are sums or means over clusters are then
a matrix product, and no resample is materialised as a copy of the data (memory stays linear).
"""

from __future__ import annotations

import numpy as np


def cluster_bootstrap_counts(n_clusters: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n_clusters) integer counts: how often each cluster is drawn in each resample."""
    rng = np.random.default_rng(seed)
    if n_clusters == 0:
        return np.zeros((n_boot, 0), dtype=np.int64)
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot)


def resampled_rows(counts: np.ndarray, cluster_rows: list[np.ndarray]) -> np.ndarray:
    """Row indices of one resample: each cluster's rows repeated as often as it was drawn."""
    parts = [np.tile(rows, k) for rows, k in zip(cluster_rows, counts) if k]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval of the finite values; (None, None) when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return None, None
    a = (1 - level) / 2
    return float(np.quantile(v, a)), float(np.quantile(v, 1 - a))
