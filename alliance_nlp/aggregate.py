"""From utterance marker probabilities to what researchers read: session Goal/Task/Bond/Total on the
WAI-SR metric (item mean 1-5) with intervals, rupture-repair episodes, and trajectories.

Method (documented in the README):
- Features: for each speaker role (therapist, client) and each of the six markers, the mean marker
  probability over that role's utterances (12 rates), plus the share of rupture episodes repaired.
  Means of probabilities, not counts of thresholded labels, so short sessions are not all-or-nothing.
- Mapping: per subscale, a ridge regression from features to the WAI-SR metric, fitted to ratings
  (the default fitted on the ESConv development ratings; a lab's own via `alliance-nlp calibrate`).
  Total is the mean of the three subscales (as WAI-SR totals are).
- Interval: estimate +/- z * sqrt(residual variance of the mapping (cross-validated) + variance of
  the estimate under a block bootstrap of the session's turns), clipped to the scale.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .labels import LABELS, RUPTURE_LABELS
from .session import Session, Utterance, write_json_atomic

SUBSCALES = ("goal", "task", "bond")
SCALE_MIN, SCALE_MAX = 1.0, 5.0
ROLES = ("therapist", "client")
FEATURES: tuple[str, ...] = tuple(f"{r}_{l}" for r in ROLES for l in LABELS) + ("repaired_share",)
COLLABORATIVE = ("goal", "task", "bond")
DEFAULT_CALIBRATION = Path(__file__).resolve().parent / "resources" / "calibration_default.json"


# ---- features ---------------------------------------------------------------------------------
def utterance_matrix(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """(n_utterances x 6) probabilities and an array of roles, in session order."""
    utts = session.utterances
    P = np.array([[u.probabilities.get(l, 0.0) for l in LABELS] for u in utts], dtype=float).reshape(-1, len(LABELS))
    roles = np.array([session.role_of(u.speaker) for u in utts])
    return P, roles


def features_from(P: np.ndarray, roles: np.ndarray, repaired_share: float) -> np.ndarray:
    out = []
    for r in ROLES:
        m = roles == r
        out += list(P[m].mean(axis=0)) if m.any() else [np.nan] * len(LABELS)
    return np.array(out + [repaired_share], dtype=float)


def session_features(session: Session, episodes: list[dict] | None = None) -> dict[str, float]:
    P, roles = utterance_matrix(session)
    eps = rupture_episodes(session) if episodes is None else episodes
    share = (sum(e["repaired"] for e in eps) / len(eps)) if eps else 1.0
    return dict(zip(FEATURES, features_from(P, roles, share).tolist()))


# ---- mapping ----------------------------------------------------------------------------------
@dataclass
class SubscaleModel:
    """Ridge mapping (on standardised features) for one subscale; plain numbers, saved as JSON."""
    intercept: float
    coef: list[float]
    mean: list[float]
    scale: list[float]
    resid_sd: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        X = np.where(np.isnan(X), np.array(self.mean), X)
        Z = (X - np.array(self.mean)) / np.array(self.scale)
        return self.intercept + Z @ np.array(self.coef)


@dataclass
class AllianceAggregator:
    """Pipeline component: fills session.results with estimates, episodes and trajectory."""
    models: dict[str, SubscaleModel]
    features: tuple[str, ...] = FEATURES
    meta: dict[str, Any] = field(default_factory=dict)
    z: float = 1.96
    n_boot: int = 200
    block: int = 4  # turns per bootstrap block (keeps local dependence)
    window_minutes: float = 5.0
    window_turns: int = 20
    seed: int = 0

    # -- persistence --
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **kw) -> "AllianceAggregator":
        p = Path(path) if path else DEFAULT_CALIBRATION
        if not p.is_file():
            raise FileNotFoundError(f"{p}: calibration file not found (train it with "
                                    "`python -m evaluation.validate_aggregate --write-default` or "
                                    "`alliance-nlp calibrate`)")
        d = json.loads(p.read_text())
        models = {k: SubscaleModel(**v) for k, v in d["subscales"].items()}
        return cls(models=models, features=tuple(d.get("features", FEATURES)), meta=d.get("meta", {}), **kw)

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, {
            "format": "alliance-nlp/calibration", "version": 1, "scale": "WAI-SR item mean (1-5)",
            "features": list(self.features), "meta": self.meta,
            "subscales": {k: m.__dict__ for k, m in self.models.items()},
        })

    @classmethod
    def fit(cls, X: np.ndarray, Y: dict[str, np.ndarray], groups: Sequence | None = None,
            alpha: float = 10.0, meta: dict | None = None, **kw) -> "AllianceAggregator":
        """Fit one ridge per subscale; residual SD from grouped cross-validation."""
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GroupKFold, cross_val_predict

        X = np.asarray(X, float)
        mean = np.nanmean(X, axis=0)
        X = np.where(np.isnan(X), mean, X)
        scale = X.std(axis=0)
        scale[scale < 1e-9] = 1.0
        Z = (X - mean) / scale
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        models = {}
        cv_info = {}
        for name, y in Y.items():
            y = np.asarray(y, float)
            ok = ~np.isnan(y)
            r = Ridge(alpha=alpha).fit(Z[ok], y[ok])
            n_splits = min(5, len(set(groups[ok])))
            if n_splits >= 2:
                pred = cross_val_predict(Ridge(alpha=alpha), Z[ok], y[ok], groups=groups[ok],
                                         cv=GroupKFold(n_splits=n_splits))
                resid = float(np.sqrt(np.mean((y[ok] - pred) ** 2)))
            else:
                resid = float(np.std(y[ok]))
            models[name] = SubscaleModel(float(r.intercept_), r.coef_.tolist(), mean.tolist(), scale.tolist(), resid)
            cv_info[name] = {"n": int(ok.sum()), "cv_rmse": round(resid, 4)}
        return cls(models=models, meta={**(meta or {}), "fit": cv_info, "alpha": alpha}, **kw)

    # -- estimates --
    def _predict(self, feats: np.ndarray) -> dict[str, float]:
        est = {k: float(np.clip(self.models[k].predict(feats)[0], SCALE_MIN, SCALE_MAX))
               for k in SUBSCALES if k in self.models}
        est["total"] = float(np.mean([est[k] for k in SUBSCALES if k in est]))
        return est

    def estimate(self, P: np.ndarray, roles: np.ndarray, repaired_share: float,
                 turn_ids: np.ndarray | None = None) -> dict[str, dict[str, float]]:
        """Point estimates with intervals for one stretch of talk (a session or a window)."""
        if len(P) == 0:
            return {k: {"estimate": None, "low": None, "high": None} for k in (*SUBSCALES, "total")}
        point = self._predict(features_from(P, roles, repaired_share))
        boot = self._bootstrap(P, roles, repaired_share, turn_ids)
        out = {}
        for k in (*SUBSCALES, "total"):
            resid = (self.models[k].resid_sd if k in self.models else
                     float(np.mean([self.models[s].resid_sd for s in SUBSCALES])))
            sd = float(np.sqrt(resid ** 2 + (np.nanvar(boot[k]) if len(boot[k]) else 0.0)))
            out[k] = {"estimate": round(point[k], 3),
                      "low": round(max(SCALE_MIN, point[k] - self.z * sd), 3),
                      "high": round(min(SCALE_MAX, point[k] + self.z * sd), 3)}
        return out

    def _bootstrap(self, P, roles, repaired_share, turn_ids) -> dict[str, list[float]]:
        rng = np.random.default_rng(self.seed)
        ids = np.arange(len(P)) if turn_ids is None else np.asarray(turn_ids)
        uniq = np.unique(ids)
        blocks = [np.flatnonzero(np.isin(ids, uniq[i:i + self.block])) for i in range(0, len(uniq), self.block)]
        res: dict[str, list[float]] = {k: [] for k in (*SUBSCALES, "total")}
        if len(blocks) < 2:
            return res
        for _ in range(self.n_boot):
            pick = np.concatenate([blocks[i] for i in rng.integers(0, len(blocks), len(blocks))])
            est = self._predict(features_from(P[pick], roles[pick], repaired_share))
            for k, v in est.items():
                res[k].append(v)
        return res

    def __call__(self, session: Session) -> Session:
        P, roles = utterance_matrix(session)
        turn_ids = np.array([ti for ti, _, _ in session.iter_utterances()])
        episodes = rupture_episodes(session)
        share = (sum(e["repaired"] for e in episodes) / len(episodes)) if episodes else 1.0
        est = self.estimate(P, roles, share, turn_ids)
        session.results.update(est)
        session.results["estimate_method"] = {
            "scale": "WAI-SR item mean (1-5)", "interval": f"{int(round(100 * (1 - 2 * (1 - _phi(self.z)))))}%",
            "calibration": self.meta.get("name", "custom"),
        }
        session.results["features"] = {k: (None if np.isnan(v) else round(v, 4))
                                       for k, v in zip(FEATURES, features_from(P, roles, share))}
        session.results["episodes"] = episodes
        session.results["ruptures"] = {
            "episodes": len(episodes), "repaired": sum(e["repaired"] for e in episodes),
            "unrepaired": sum(not e["repaired"] for e in episodes),
            "resolved": sum(bool(e["resolved"]) for e in episodes),
        }
        session.results["trajectory"] = self.trajectory(session, P, roles, turn_ids, episodes)
        return session

    def trajectory(self, session, P, roles, turn_ids, episodes) -> dict[str, Any]:
        from .segment import make_windows

        windows = make_windows(session, minutes=self.window_minutes, turns=self.window_turns)
        points = []
        for w in windows:
            lo, hi = w["utt_start"], w["utt_end"]
            eps = [e for e in episodes if lo <= e["start_utterance"] < hi]
            share = (sum(e["repaired"] for e in eps) / len(eps)) if eps else 1.0
            points.append({**w, **self.estimate(P[lo:hi], roles[lo:hi], share, turn_ids[lo:hi]),
                           "ruptures": len(eps)})
        return {"by": windows[0]["by"] if windows else None, "windows": points}


def _phi(z: float) -> float:
    from math import erf, sqrt
    return 0.5 * (1 + erf(z / sqrt(2)))


# ---- rupture-repair episodes ------------------------------------------------------------------
def rupture_episodes(session: Session, merge_gap: int = 2, repair_window: int = 5,
                     resolve_client_turns: int = 3) -> list[dict[str, Any]]:
    """Runs of rupture markers (gaps of <= merge_gap utterances merged) with repair and resolution.

    repaired: a `repair` marker inside the run or within `repair_window` utterances after it.
    resolved: the client's next `resolve_client_turns` utterances after the run (after the repair,
    if any) carry no rupture marker and at least one collaborative marker (goal, task, bond);
    None when the session ends first.
    """
    utts: list[Utterance] = session.utterances
    rupt = [i for i, u in enumerate(utts) if any(l in u.markers for l in RUPTURE_LABELS)]
    runs: list[list[int]] = []
    for i in rupt:
        if runs and i - runs[-1][-1] <= merge_gap + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    episodes = []
    for k, run in enumerate(runs):
        start, end = run[0], run[-1]
        kinds = {l for i in run for l in RUPTURE_LABELS if l in utts[i].markers}
        limit = min(len(utts), end + 1 + repair_window)
        if k + 1 < len(runs):
            limit = min(limit, runs[k + 1][0])
        repair_at = next((i for i in range(start, limit) if "repair" in utts[i].markers), None)
        after = (repair_at if repair_at is not None and repair_at > end else end) + 1
        client_next = [u for u in utts[after:] if session.role_of(u.speaker) == "client"][:resolve_client_turns]
        if len(client_next) < resolve_client_turns and not client_next:
            resolved = None
        else:
            resolved = (not any(l in u.markers for u in client_next for l in RUPTURE_LABELS)
                        and any(l in u.markers for u in client_next for l in COLLABORATIVE))
        episodes.append({
            "index": k,
            "type": "mixed" if len(kinds) > 1 else next(iter(kinds)).replace("rupture_", ""),
            "start_utterance": start, "end_utterance": end,
            "start": utts[start].start, "end": utts[end].end,
            "sources": sorted({utts[i].source for i in run if utts[i].source is not None}),
            "by": sorted({session.role_of(utts[i].speaker) for i in run}),
            "peak_probability": round(max(max(utts[i].probabilities.get(l, 0.0) for l in RUPTURE_LABELS)
                                          for i in run), 4),
            "repaired": repair_at is not None,
            "repair_utterance": repair_at,
            "resolved": resolved,
        })
    return episodes


# ---- course across sessions -------------------------------------------------------------------
def course_shape(totals: Sequence[float], delta: float = 0.25) -> str:
    """Classify a client's alliance course over sessions (Stiles et al. 2004).

    `delta` (WAI-SR points) is the smallest change treated as real. Returns one of
    "insufficient", "stable", "rising", "falling", "high-low-high", "low-high-low".
    """
    t = np.asarray([x for x in totals if x is not None], float)
    if len(t) < 3:
        return "insufficient" if len(t) < 2 else ("rising" if t[1] - t[0] >= delta else
                                                 "falling" if t[0] - t[1] >= delta else "stable")
    if t.max() - t.min() < delta:
        return "stable"
    i = int(np.argmin(t[1:-1])) + 1
    if t[:i].max() - t[i] >= delta and t[i + 1:].max() - t[i] >= delta:
        return "high-low-high"
    j = int(np.argmax(t[1:-1])) + 1
    if t[j] - t[:j].min() >= delta and t[j] - t[j + 1:].min() >= delta:
        return "low-high-low"
    slope = np.polyfit(np.arange(len(t)), t, 1)[0] * (len(t) - 1)
    if slope >= delta:
        return "rising"
    if slope <= -delta:
        return "falling"
    return "stable"


def natural_key(name: str) -> list:
    """Sort key that orders 'session2' before 'session10'."""
    import re
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]
