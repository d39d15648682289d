"""AGGREGATE stage: from utterance marker probabilities to what researchers read: session
Goal/Task/Bond/Total on the WAI-SR metric (item mean 1-5) with intervals, rupture-repair episodes,
and the within-session trajectory.

Method (documented in the README):
- Features and mapping: `alliance_nlp.mapping` (per-role mean marker probabilities and the repaired
  share, mapped per subscale by a ridge fitted to ratings). Total is the mean of the three subscales.
- Interval (a prediction interval for a rating): estimate +/- z * sqrt(residual variance of the
  mapping (cross-validated) + variance of the estimate under a cluster bootstrap over blocks of
  `block` consecutive turns), cut at 1 and 5, and `bound` says so when it is.
- Indices (`alliance_nlp.indices`): transparent marker rates per 100 utterances with the bootstrap
  interval of this session's utterances alone; they need no ratings.
  A resample is a count per block, so the bootstrap costs memory linear in the session's length.
- Episodes: `alliance_nlp.episodes`; trajectory: the same estimate per window (`alliance_nlp.windows`).
"""

from __future__ import annotations

import os
from statistics import NormalDist
from typing import Any

import numpy as np

from .episodes import repaired_share, rupture_episodes
from .errors import PipelineError
from .indices import marker_indices
from .labels import LABELS
from .mapping import FEATURES, ROLES, SCALE, SCALE_MAX, SCALE_MIN, WaiMapping, features_from
from .session import ESTIMATES, Estimate, Results, Session, WindowEstimate
from .stats import cluster_bootstrap_counts
from .windows import make_windows


def utterance_matrix(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """(n_utterances x 6) probabilities and an array of roles, in session order.

    Raises PipelineError when an utterance has no probabilities: a missing probability is never a 0."""
    utts = session.utterances
    missing = [i for i, u in enumerate(utts) if any(lab not in u.probabilities for lab in LABELS)]
    if missing:
        raise PipelineError(
            f"{session.name}: {len(missing)} utterance(s) have no marker probabilities; "
            "run the classify component before aggregate"
        )
    P = np.array([[u.probabilities[lab] for lab in LABELS] for u in utts], dtype=float).reshape(-1, len(LABELS))
    roles = np.array([session.role_of(u.speaker) for u in utts])
    return P, roles


def session_features(session: Session) -> dict[str, float]:
    """The mapping's features for a classified session, computed as the aggregate stage does."""
    P, roles = utterance_matrix(session)
    share = repaired_share(rupture_episodes(session))
    return dict(zip(FEATURES, features_from(P, roles, share).tolist()))


class Aggregator:
    """Pipeline component `aggregate`: fills `session.results` (estimates, episodes, trajectory)."""

    def __init__(
        self,
        mapping: WaiMapping,
        z: float = 1.96,
        n_boot: int = 200,
        block: int = 4,
        window_minutes: float = 5.0,
        window_turns: int = 20,
        seed: int = 0,
    ):
        self.mapping, self.z, self.n_boot, self.block = mapping, z, n_boot, block
        self.window_minutes, self.window_turns, self.seed = window_minutes, window_turns, seed

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **kw: Any) -> Aggregator:
        """With the mapping file at `path` (default: the shipped mapping)."""
        return cls(WaiMapping.load(path), **kw)

    def clusters(self, turn_ids: np.ndarray) -> np.ndarray:
        """The bootstrap's cluster of each utterance: blocks of `block` consecutive turns, numbered 0.."""
        _, turn_index = np.unique(np.asarray(turn_ids), return_inverse=True)
        return turn_index // self.block

    # ---- estimates ------------------------------------------------------------------------
    def _role_sums(
        self, P: np.ndarray, roles: np.ndarray, clusters: np.ndarray, n_clusters: int
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per role: (clusters x labels) probability sums and per-cluster utterance counts."""
        sums, counts = [], []
        for r in ROLES:
            m = roles == r
            s = np.zeros((n_clusters, P.shape[1]))
            np.add.at(s, clusters[m], P[m])
            sums.append(s)
            counts.append(np.bincount(clusters[m], minlength=n_clusters).astype(float))
        return sums, counts

    def estimate(
        self, P: np.ndarray, roles: np.ndarray, share: float, turn_ids: np.ndarray | None = None
    ) -> dict[str, Estimate]:
        """Point estimates with intervals for one stretch of talk (a session or a window)."""
        if len(P) == 0:
            return {k: Estimate(None, None, None) for k in ESTIMATES}
        point = {k: float(v[0]) for k, v in self.mapping.predict(features_from(P, roles, share)).items()}
        clusters = self.clusters(np.arange(len(P)) if turn_ids is None else turn_ids)
        n_clusters = int(clusters.max()) + 1
        boot_var = dict.fromkeys(ESTIMATES, 0.0)
        if n_clusters >= 2 and self.n_boot > 0:
            W = cluster_bootstrap_counts(n_clusters, self.n_boot, self.seed).astype(float)
            sums, counts = self._role_sums(P, roles, clusters, n_clusters)
            cols = []
            for s, c in zip(sums, counts):
                n = W @ c
                with np.errstate(invalid="ignore", divide="ignore"):
                    cols.append(np.where(n[:, None] > 0, (W @ s) / n[:, None], np.nan))
            X = np.hstack([*cols, np.full((len(W), 1), share)])
            boot = self.mapping.predict(X)
            boot_var = {k: float(np.nanvar(v)) for k, v in boot.items()}
        out = {}
        for k in ESTIMATES:
            resid = self.mapping.resid_sd.get(k, self.mapping.total_resid_sd())
            sd = float(np.sqrt(resid**2 + boot_var[k]))
            q = self.mapping.resid_q.get(k) if k != "total" else self._total_q()
            if q is not None and resid > 0:  # empirical residual quantiles, widened by this session's sampling
                lo, hi = point[k] + q[0] * sd / resid, point[k] + q[1] * sd / resid
            else:
                lo, hi = point[k] - self.z * sd, point[k] + self.z * sd
            cut = [side for side, hit in (("low", lo < SCALE_MIN), ("high", hi > SCALE_MAX)) if hit]
            out[k] = Estimate(
                round(point[k], 3),
                round(max(SCALE_MIN, lo), 3),
                round(min(SCALE_MAX, hi), 3),
                "both" if len(cut) == 2 else (cut[0] if cut else None),
            )
        return out

    def _total_q(self) -> tuple[float, float] | None:
        """Total's residual quantiles: the mean of the subscales' (Total is their mean)."""
        qs = [self.mapping.resid_q[k] for k in ("goal", "task", "bond") if k in self.mapping.resid_q]
        return (float(np.mean([q[0] for q in qs])), float(np.mean([q[1] for q in qs]))) if len(qs) == 3 else None

    def __call__(self, session: Session) -> Session:
        P, roles = utterance_matrix(session)
        turn_ids = np.array([ti for ti, _, _ in session.iter_utterances()], dtype=int)
        episodes = rupture_episodes(session)
        share = repaired_share(episodes)
        trajectory = []
        for w in make_windows(session, minutes=self.window_minutes, turns=self.window_turns):
            lo, hi = w.utt_start, w.utt_end
            eps = [e for e in episodes if lo <= e.start_utterance < hi]
            trajectory.append(
                WindowEstimate(w, self.estimate(P[lo:hi], roles[lo:hi], repaired_share(eps), turn_ids[lo:hi]), len(eps))
            )
        feats = features_from(P, roles, share)
        indices = marker_indices(P, roles, self.clusters(turn_ids), self.n_boot, self.seed)
        session.results = Results(
            indices=indices,
            estimates=self.estimate(P, roles, share, turn_ids),
            method={
                "scale": SCALE,
                "interval": f"{round(100 * (2 * NormalDist().cdf(self.z) - 1))}%",
                "mapping": self.mapping.name,
            },
            features={k: (None if np.isnan(v) else round(float(v), 4)) for k, v in zip(FEATURES, feats)},
            episodes=episodes,
            trajectory=trajectory,
            trajectory_by=trajectory[0].window.by if trajectory else None,
        )
        session.provenance["aggregate"] = {"mapping": self.mapping.name, "n_boot": self.n_boot, "block": self.block}
        return session
