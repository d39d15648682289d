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


FAMILIES = ("constrained", "ridge")


def signs(subscale: str) -> dict[str, int]:
    """The constrained family's features for a subscale and the sign each weight must have: the
    subscale's own marker for both roles (+), withdrawal and confrontation for both roles (-), the
    therapist's repair and the repaired share of rupture episodes (+). Other markers are not read."""
    own = subscale if subscale in LABELS else None
    out = (
        {f"{r}_{own}": 1 for r in ROLES}
        if own
        else {f"{r}_{lab}": 1 for r in ROLES for lab in ("goal", "task", "bond")}
    )
    out.update({f"{r}_{lab}": -1 for r in ROLES for lab in ("rupture_withdrawal", "rupture_confrontation")})
    out.update({"therapist_repair": 1, "repaired_share": 1})
    return out


def fit_linear(name: str, X: np.ndarray, y: np.ndarray, family: str, alpha: float = 10.0) -> LinearModel:
    """One subscale's model on all FEATURES (unread features weigh 0); missing features take the
    training mean, features are standardised."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    imputer = SimpleImputer(strategy="mean", keep_empty_features=True).fit(X)
    scaler = StandardScaler().fit(imputer.transform(X))
    Z = scaler.transform(imputer.transform(X))
    if family == "ridge":
        est = Ridge(alpha=alpha).fit(Z, y)
        coef, intercept = np.ravel(est.coef_), float(est.intercept_)
    else:
        sg = signs(name)
        cols = [FEATURES.index(f) for f in sg]
        sign = np.array(list(sg.values()), dtype=float)
        est = Ridge(alpha=alpha, positive=True).fit(Z[:, cols] * sign, y)
        coef = np.zeros(len(FEATURES))
        coef[cols] = est.coef_ * sign
        intercept = float(est.intercept_)
    return LinearModel(
        name=name,
        features=list(FEATURES),
        mean=imputer.statistics_.tolist(),  # missing features take the imputed (training) mean
        scale=scaler.scale_.tolist(),
        coef=coef.tolist(),
        intercept=intercept,
    )


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
    # the 2.5% and 97.5% quantiles of the cross-validated residuals (rating - estimate): ratings are
    # skewed (many at the top of the scale), so a 95% interval is not symmetric
    resid_q: dict[str, tuple[float, float]] = field(default_factory=dict)

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
        family: str = "constrained",
    ) -> WaiMapping:
        """One linear model per subscale (NaN ratings skipped); residual SD from grouped 5-fold CV.

        family "constrained" (the default): each subscale reads only its own marker's rates (+), the
        rupture rates (-) and repair (+), with those signs enforced (non-negative ridge on sign-flipped
        features, penalty `alpha`), so it cannot learn the quirks of one stand-in rating, and Goal,
        Task and Bond differ whenever their markers do. "ridge": all 13 features, ridge penalty
        `alpha` (the v0.2 mapping)."""
        from sklearn.model_selection import GroupKFold

        if family not in FAMILIES:
            raise ValueError(f"family {family!r}: choose one of {', '.join(FAMILIES)}")
        X = np.asarray(X, dtype=float)
        g = np.arange(len(X)) if groups is None else np.asarray(groups)
        models, resid, info = {}, {}, {}
        quantiles: dict[str, tuple[float, float]] = {}
        for name, y in Y.items():
            y = np.asarray(y, dtype=float)
            ok = ~np.isnan(y)
            models[name] = fit_linear(name, X[ok], y[ok], family, alpha)
            n_splits = min(5, len(set(g[ok])))
            if n_splits >= 2:
                pred = np.empty(int(ok.sum()))
                for tr, te in GroupKFold(n_splits=n_splits).split(X[ok], y[ok], g[ok]):
                    pred[te] = fit_linear(name, X[ok][tr], y[ok][tr], family, alpha).predict(X[ok][te])
                sd = float(np.sqrt(np.mean((y[ok] - pred) ** 2)))
            else:
                sd = float(np.std(y[ok]))
            resid[name] = sd
            if n_splits >= 2:
                r = y[ok] - pred
                quantiles[name] = (float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975)))
            info[name] = {"n": int(ok.sum()), "cv_rmse": round(sd, 4)}
        return cls(models, resid, FEATURES, {**(meta or {}), "fit": info, "alpha": alpha, "family": family}, quantiles)

    # ---- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "scale": SCALE,
            "features": list(self.features),
            "meta": self.meta,
            "subscales": {
                k: {
                    "model": m.to_dict(),
                    "resid_sd": self.resid_sd[k],
                    **({"resid_quantiles": list(self.resid_q[k])} if k in self.resid_q else {}),
                }
                for k, m in self.models.items()
            },
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
            {
                k: (float(v["resid_quantiles"][0]), float(v["resid_quantiles"][1]))
                for k, v in subs.items()
                if "resid_quantiles" in v
            },
        )
