"""The WAI mapping: from a session's marker features to Goal/Task/Bond on the WAI-SR metric.

A mapping is fitted to ratings (the shipped default on ESConv development ratings, a lab's own with
`alliance-nlp fit-mapping`) and stored as JSON: one `LinearModel` per subscale plus the residual SD
from grouped cross-validation, which the interval uses. Fitting is a scikit-learn pipeline (mean
imputation, standardisation, ridge); prediction needs only the stored numbers.

Features (`FEATURES`): for each speaker role (therapist, client) and each of the six markers, the mean
marker probability over that role's utterances (12 rates), plus the share of rupture episodes
repaired. Means of probabilities, not counts of thresholded labels, so short sessions are not
all-or-nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .files import write_json_atomic
from .labels import LABELS
from .linear import LinearModel
from .resources import resource_path
from .session import SUBSCALES

FORMAT = "alliance-nlp/wai-mapping"
VERSION = 2
LEGACY_FORMAT = "alliance-nlp/calibration"  # v0.1 files from `alliance-nlp calibrate`
SCALE = "WAI-SR item mean (1-5)"
SCALE_MIN, SCALE_MAX = 1.0, 5.0
ROLES = ("therapist", "client")
FEATURES: tuple[str, ...] = tuple(f"{r}_{lab}" for r in ROLES for lab in LABELS) + ("repaired_share",)


def default_mapping_path() -> Path:
    return resource_path("wai_mapping.json")


def features_from(P: np.ndarray, roles: np.ndarray, repaired_share: float) -> np.ndarray:
    """The feature vector of one stretch of talk: per-role mean probabilities (NaN for an absent
    role) and the repaired share."""
    out: list[float] = []
    for r in ROLES:
        m = roles == r
        out += list(P[m].mean(axis=0)) if m.any() else [np.nan] * len(LABELS)
    return np.array(out + [repaired_share], dtype=float)


@dataclass
class WaiMapping:
    """Per-subscale linear models on `features`; `resid_sd[k]` is the cross-validated residual SD."""

    models: dict[str, LinearModel]
    resid_sd: dict[str, float]
    features: tuple[str, ...] = FEATURES
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "custom"))

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Subscale estimates (clipped to the scale) and their mean as Total, for rows of features."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        est = {k: np.clip(self.models[k].predict(X), SCALE_MIN, SCALE_MAX) for k in SUBSCALES if k in self.models}
        est["total"] = np.mean([est[k] for k in SUBSCALES if k in est], axis=0)
        return est

    def total_resid_sd(self) -> float:
        return float(np.mean([self.resid_sd[k] for k in SUBSCALES if k in self.resid_sd]))

    # ---- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        Y: dict[str, np.ndarray],
        groups: Sequence[Any] | None = None,
        alpha: float = 10.0,
        meta: dict[str, Any] | None = None,
    ) -> WaiMapping:
        """One ridge per subscale (NaN ratings skipped); residual SD from grouped 5-fold CV."""
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GroupKFold, cross_val_predict
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X = np.asarray(X, dtype=float)
        g = np.arange(len(X)) if groups is None else np.asarray(groups)
        models, resid, info = {}, {}, {}
        for name, y in Y.items():
            y = np.asarray(y, dtype=float)
            ok = ~np.isnan(y)
            pipe = make_pipeline(
                SimpleImputer(strategy="mean", keep_empty_features=True), StandardScaler(), Ridge(alpha=alpha)
            )
            pipe.fit(X[ok], y[ok])
            n_splits = min(5, len(set(g[ok])))
            if n_splits >= 2:
                pred = cross_val_predict(pipe, X[ok], y[ok], groups=g[ok], cv=GroupKFold(n_splits=n_splits))
                sd = float(np.sqrt(np.mean((y[ok] - pred) ** 2)))
            else:
                sd = float(np.std(y[ok]))
            imputer, scaler, ridge = pipe.steps[0][1], pipe.steps[1][1], pipe.steps[2][1]
            scaler.mean_ = imputer.statistics_  # missing features take the imputed (training) mean
            models[name] = LinearModel.from_sklearn(name, FEATURES, scaler, ridge)
            resid[name] = sd
            info[name] = {"n": int(ok.sum()), "cv_rmse": round(sd, 4)}
        return cls(models, resid, FEATURES, {**(meta or {}), "fit": info, "alpha": alpha})

    # ---- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "scale": SCALE,
            "features": list(self.features),
            "meta": self.meta,
            "subscales": {k: {"model": m.to_dict(), "resid_sd": self.resid_sd[k]} for k, m in self.models.items()},
        }

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> WaiMapping:
        """Read a mapping file (default: the shipped one); any problem is a ModelError naming the file."""
        from .integrity import verify_file

        p = Path(path) if path else default_mapping_path()
        if p.is_file():
            verify_file(p)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            return cls.from_dict(d)
        except FileNotFoundError:
            raise ModelError(f"{p}: mapping file not found (write one with `alliance-nlp fit-mapping`)") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{p}: not a valid WAI mapping file ({exc})") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WaiMapping:
        feats = tuple(d.get("features", FEATURES))
        if feats != FEATURES:
            raise ValueError(f"features {list(feats)} differ from this version's {list(FEATURES)}")
        if d.get("format") == LEGACY_FORMAT:  # v0.1: plain ridge numbers per subscale
            models = {
                k: LinearModel(
                    name=k,
                    features=list(FEATURES),
                    mean=v["mean"],
                    scale=v["scale"],
                    coef=v["coef"],
                    intercept=float(v["intercept"]),
                )
                for k, v in d["subscales"].items()
            }
            return cls(
                models, {k: float(v["resid_sd"]) for k, v in d["subscales"].items()}, feats, dict(d.get("meta", {}))
            )
        if d.get("format") != FORMAT:
            raise ValueError(f"format {d.get('format')!r} is not {FORMAT!r}")
        subs = d["subscales"]
        if not subs or set(subs) - set(SUBSCALES):
            raise ValueError(f"subscales must be among {', '.join(SUBSCALES)}")
        return cls(
            {k: LinearModel.from_dict(v["model"]) for k, v in subs.items()},
            {k: float(v["resid_sd"]) for k, v in subs.items()},
            feats,
            dict(d.get("meta", {})),
        )
