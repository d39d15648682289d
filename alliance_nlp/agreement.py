"""Agreement between session estimates and a lab's ratings: r, rho, ICC(A,1), MAE, RMSE with
bootstrap intervals, MAE of predicting the mean, prediction-interval coverage, AUC for a binary
outcome, and Bland-Altman data (behind `alliance-nlp check-ratings`: the validity table we publish)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

from .stats import percentile_interval


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
        "spearman_rho": float("nan") if const else float(stats.spearmanr(x, y)[0]),  # type: ignore[arg-type]
        "icc_a1": icc_a1(x, y),
        "mae": float(np.mean(np.abs(x - y))),
        "rmse": float(np.sqrt(np.mean((x - y) ** 2))),
    }


def agreement(
    estimates: np.ndarray,
    ratings: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics with percentile bootstrap intervals (sessions resampled in pairs; scipy.stats.bootstrap)
    and Bland-Altman data. An interval is None where the resamples leave it undefined. With the
    estimates' interval bounds (`low`, `high`): how many ratings the intervals cover, and their median
    width."""
    x, y = np.asarray(estimates, float), np.asarray(ratings, float)
    n = len(x)
    out: dict[str, Any] = {"n": n}
    if n < 3:
        return {**out, "note": "fewer than 3 rated sessions"}
    out["mae_predicting_the_mean"] = _round(float(np.mean(np.abs(y - y.mean()))))
    if low is not None and high is not None:
        lo, hi = np.asarray(low, float), np.asarray(high, float)
        out["interval_coverage"] = _round(float(np.mean((y >= lo) & (y <= hi))))
        out["interval_median_width"] = _round(float(np.median(hi - lo)))
    point = _metrics(x, y)
    for k, v in point.items():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (x, y),
                lambda a, b, k=k: _metrics(a, b)[k],
                paired=True,
                vectorized=False,
                n_resamples=n_boot,
                method="percentile",
                rng=seed,
            )
        ci_low, ci_high = percentile_interval(res.bootstrap_distribution, level)
        out[k] = {"value": _round(v), "low": _round(ci_low), "high": _round(ci_high)}
    d = x - y
    out["bland_altman"] = {
        "mean_difference": round(float(d.mean()), 4),
        "sd_difference": round(float(d.std(ddof=1)), 4),
        "lower_limit": round(float(d.mean() - 1.96 * d.std(ddof=1)), 4),
        "upper_limit": round(float(d.mean() + 1.96 * d.std(ddof=1)), 4),
        "points": [
            {"mean": round(float((xi + yi) / 2), 4), "difference": round(float(xi - yi), 4)} for xi, yi in zip(x, y)
        ],
    }
    return out


def binary_auc(scores: np.ndarray, outcome: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """AUC of the estimates for a binary outcome (e.g. good vs poor session, dropout), with a bootstrap
    interval over sessions; None where a class is empty."""
    from sklearn.metrics import roc_auc_score

    x, y = np.asarray(scores, float), np.asarray(outcome, int)
    n1 = int(y.sum())
    if n1 == 0 or n1 == len(y):
        return {"n": len(y), "positives": n1, "note": "both outcome classes are needed"}

    def auc(a: np.ndarray, b: np.ndarray) -> float:
        return float(roc_auc_score(b, a)) if 0 < b.sum() < len(b) else float("nan")

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (x, y), auc, paired=True, vectorized=False, n_resamples=n_boot, method="percentile", rng=seed
        )
    lo, hi = percentile_interval(res.bootstrap_distribution)
    return {"n": len(y), "positives": n1, "auc": {"value": _round(auc(x, y)), "low": _round(lo), "high": _round(hi)}}


def _round(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 4)


def render_table(report: dict[str, Any]) -> str:
    """The agreement report as a fixed-width table; undefined values and intervals print as n/a."""
    rows = [
        f"{report['instrument']}: {report['sessions_matched']} sessions "
        f"(mapping: {report['mapping']}); 95% bootstrap intervals",
        f"{'scale':<7}{'n':>5}  {'r':>20}  {'rho':>20}  {'ICC(A,1)':>20}  {'MAE':>18}  {'RMSE':>18}"
        f"  {'MAE(mean)':>9}  {'coverage':>8}",
    ]

    def num(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    def cell(d: dict[str, float | None]) -> str:
        return f"{num(d['value'])} [{num(d['low'])}, {num(d['high'])}]"

    for k, m in report["subscales"].items():
        if "pearson_r" not in m:
            rows.append(f"{k:<7}{m['n']:>5}  {m.get('note', '')}")
            continue
        rows.append(
            f"{k:<7}{m['n']:>5}  {cell(m['pearson_r']):>20}  {cell(m['spearman_rho']):>20}  "
            f"{cell(m['icc_a1']):>20}  {cell(m['mae']):>18}  {cell(m['rmse']):>18}"
            f"  {num(m.get('mae_predicting_the_mean')):>9}  {num(m.get('interval_coverage')):>8}"
        )
    for k, a in (report.get("outcome") or {}).get("auc_by_scale", {}).items():
        if "auc" in a:
            rows.append(
                f"AUC of {k} for {report['outcome']['column']} ({a['positives']} of {a['n']}): {cell(a['auc'])}"
            )
        else:
            rows.append(f"AUC of {k} for {report['outcome']['column']}: n/a ({a['note']})")
    return "\n".join(rows)
