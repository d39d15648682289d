"""Classifier probability calibration: per-label decision thresholds, temperature scaling and
calibration error for multi-label scores.

Shared by the classifier's training recipe and the baselines, so every model is tuned the same way:
temperatures and thresholds are fitted on the validation split and only applied to the test split.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit as sigmoid

from alliance_nlp.stats import cluster_bootstrap_counts, resampled_rows


def f1_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    pred = p >= t
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 over the candidate cut points; 0.5 when there are no positives.

    The cut lies midway between the lowest positive-predicted score and the next score below, so a
    threshold does not sit exactly on one validation example.
    """
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=float)
    if y.sum() == 0:
        return 0.5, 0.0
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    f1 = 2 * tp / (2 * tp + fp + (ys.sum() - tp))
    # only cut between distinct scores
    distinct = np.r_[ps[:-1] > ps[1:], True]
    f1 = np.where(distinct, f1, -1)
    k = int(np.argmax(f1))
    below = ps[k + 1] if k + 1 < len(ps) else ps[k] - 1e-3
    return float((ps[k] + below) / 2), float(f1[k])


def tune_thresholds(Y: np.ndarray, P: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Per label: the max-F1 cut, or with the rows' sessions `groups`, the bagged one."""
    if groups is None:
        return np.array([best_threshold(Y[:, j], P[:, j])[0] for j in range(Y.shape[1])])
    return np.array([bagged_threshold(Y[:, j], P[:, j], groups) for j in range(Y.shape[1])])


def bagged_threshold(y: np.ndarray, p: np.ndarray, groups: np.ndarray, n_boot: int = 100, seed: int = 0) -> float:
    """Median of the max-F1 cuts over bootstrap resamples of whole sessions (`groups`).

    With few positives the single max-F1 cut sits wherever a handful of validation examples put it; the
    median over resamples of sessions is the cut that is best across the sessions one might have drawn,
    so it moves less to a new set of sessions (measured in evaluation/threshold_transfer.py).
    """
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=float)
    if y.sum() == 0:
        return 0.5
    _, inv = np.unique(np.asarray(groups), return_inverse=True)
    rows = [np.flatnonzero(inv == g) for g in range(inv.max() + 1)]
    cuts = []
    for counts in cluster_bootstrap_counts(len(rows), n_boot, seed):
        idx = resampled_rows(counts, rows)
        if y[idx].sum():
            cuts.append(best_threshold(y[idx], p[idx])[0])
    return float(np.median(cuts)) if cuts else best_threshold(y, p)[0]


def fit_temperature(y: np.ndarray, z: np.ndarray, grid: np.ndarray | None = None) -> float:
    """Temperature T > 0 minimising the binary NLL of sigmoid(z / T) (a fine log-spaced grid)."""
    y, z = np.asarray(y, dtype=float), np.asarray(z, dtype=float)
    if y.sum() == 0 or y.sum() == len(y):
        return 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 400)) if grid is None else grid
    best, best_nll = 1.0, np.inf
    for t in grid:
        q = np.clip(sigmoid(z / t), 1e-7, 1 - 1e-7)
        nll = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Binary ECE with equal-width bins: sum over bins of |mean(p) - mean(y)| weighted by bin share."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(ece)
