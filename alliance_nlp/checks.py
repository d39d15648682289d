"""Agreement between estimates and ratings: r, rho, ICC(A,1), MAE, RMSE with bootstrap CIs,
and Bland-Altman data."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def icc_a1(x: np.ndarray, y: np.ndarray) -> float:
    """ICC(A,1): two-way, absolute agreement, single measures (McGraw & Wong, 1996)."""
    data = np.column_stack([x, y])
    n, k = data.shape
    grand = data.mean()
    ms_r = k * ((data.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    ms_c = n * ((data.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    sse = ((data - data.mean(axis=1, keepdims=True) - data.mean(axis=0, keepdims=True) + grand) ** 2).sum()
    ms_e = sse / ((n - 1) * (k - 1))
    denom = ms_r + (k - 1) * ms_e + k * (ms_c - ms_e) / n
    return float((ms_r - ms_e) / denom) if denom else float("nan")


def _metrics(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    const = np.ptp(x) == 0 or np.ptp(y) == 0
    return {
        "pearson_r": float("nan") if const else float(stats.pearsonr(x, y)[0]),
        "spearman_rho": float("nan") if const else float(stats.spearmanr(x, y)[0]),
        "icc_a1": icc_a1(x, y),
        "mae": float(np.mean(np.abs(x - y))),
        "rmse": float(np.sqrt(np.mean((x - y) ** 2))),
    }


def agreement(estimates: np.ndarray, ratings: np.ndarray, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict[str, Any]:
    """Metrics with percentile bootstrap intervals (sessions resampled) and Bland-Altman data."""
    x, y = np.asarray(estimates, float), np.asarray(ratings, float)
    n = len(x)
    out: dict[str, Any] = {"n": n}
    if n < 3:
        return {**out, "note": "fewer than 3 rated sessions"}
    point = _metrics(x, y)
    rng = np.random.default_rng(seed)
    boots = {k: [] for k in point}
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        with np.errstate(all="ignore"):
            m = _metrics(x[i], y[i])
        for k, v in m.items():
            boots[k].append(v)
    a = (1 - level) / 2
    for k, v in point.items():
        b = np.array(boots[k], float)
        b = b[~np.isnan(b)]
        out[k] = {"value": round(v, 4),
                  "low": round(float(np.quantile(b, a)), 4) if len(b) else None,
                  "high": round(float(np.quantile(b, 1 - a)), 4) if len(b) else None}
    d = x - y
    out["bland_altman"] = {
        "mean_difference": round(float(d.mean()), 4), "sd_difference": round(float(d.std(ddof=1)), 4),
        "lower_limit": round(float(d.mean() - 1.96 * d.std(ddof=1)), 4),
        "upper_limit": round(float(d.mean() + 1.96 * d.std(ddof=1)), 4),
        "points": [{"mean": round(float((xi + yi) / 2), 4), "difference": round(float(xi - yi), 4)}
                   for xi, yi in zip(x, y)],
    }
    return out
