"""A linear model stored as JSON: feature names, standardisation, coefficients, and for a classifier
a Platt calibration. Loading is plain JSON (no pickle), and prediction needs only numpy (not scipy), so
the shipped models (speaker roles, speaker changes, the WAI mapping) are safe to load, diffable and
versioned. Fitting happens elsewhere (scikit-learn); `from_sklearn` turns a fitted scaler + linear
estimator into this form.
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


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function (scipy.special.expit's values, without importing scipy: 0.7 s at start-up)."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=float)))


SCHEMA = "alliance-nlp/linear-model"
VERSION = "1.0"


@dataclass
class LinearModel:
    name: str
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    calibration: tuple[float, float] = (1.0, 0.0)  # p = sigmoid(a * decision + b)
    # meta may hold a nested model dict (e.g. "stage1"): a first-stage model used to build features
    threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    def decision(self, X: np.ndarray) -> np.ndarray:
        """Linear score per row; a missing (NaN) feature takes its training mean (contributes zero)."""
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[None, :]
        mean = np.asarray(self.mean)
        X = np.where(np.isnan(X), mean, X)
        Z = (X - mean) / np.asarray(self.scale)
        return Z @ np.asarray(self.coef) + self.intercept

    predict = decision

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of the positive class, one per row."""
        a, b = self.calibration
        return expit(a * self.decision(X) + b)

    @classmethod
    def from_sklearn(cls, name: str, features: Sequence[str], scaler: Any, estimator: Any, **kw: Any) -> LinearModel:
        """From a fitted StandardScaler and a linear estimator (Ridge, LogisticRegression)."""
        coef = np.ravel(estimator.coef_)
        intercept = (
            float(np.ravel(estimator.intercept_)[0]) if np.ndim(estimator.intercept_) else float(estimator.intercept_)
        )
        return cls(
            name=name,
            features=list(features),
            mean=scaler.mean_.tolist(),
            scale=scaler.scale_.tolist(),
            coef=coef.tolist(),
            intercept=intercept,
            **kw,
        )

    def decision_sparse(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """Decision for sparse rows (dicts holding only non-zero features), without a dense matrix."""
        if not hasattr(self, "_index"):
            mean, scale, coef = map(np.asarray, (self.mean, self.scale, self.coef))
            self._w = coef / scale
            self._base = self.intercept - float(np.sum(mean * self._w))
            self._index = {f: i for i, f in enumerate(self.features)}
        idx, w = self._index, self._w
        return np.array([self._base + sum(w[idx[f]] * v for f, v in r.items() if f in idx) for r in rows])

    def predict_proba_sparse(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        a, b = self.calibration
        return expit(a * self.decision_sparse(rows) + b)

    def vectorize(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        return np.array([[float(r.get(f, 0.0)) for f in self.features] for r in rows], dtype=float).reshape(
            len(rows), len(self.features)
        )

    # ---- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "name": self.name,
            "features": self.features,
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "intercept": self.intercept,
            "calibration": list(self.calibration),
            "threshold": self.threshold,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearModel:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not an alliance-nlp linear model (schema={d.get('schema')!r})")
        if str(d.get("version", "")).split(".")[0] != VERSION.split(".")[0]:
            raise ValueError(f"unsupported linear-model version {d.get('version')!r}")
        n = len(d["features"])
        if not (len(d["mean"]) == len(d["scale"]) == len(d["coef"]) == n):
            raise ValueError(f"linear model {d.get('name')!r}: feature/coefficient lengths differ")
        return cls(
            name=d["name"],
            features=list(d["features"]),
            mean=list(d["mean"]),
            scale=list(d["scale"]),
            coef=list(d["coef"]),
            intercept=float(d["intercept"]),
            calibration=tuple(d.get("calibration", (1.0, 0.0))),
            threshold=float(d.get("threshold", 0.5)),
            meta=dict(d.get("meta", {})),
        )

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, _rounded(self.to_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinearModel:
        """Read a model file; any problem is a ModelError naming the file."""
        from .integrity import verify_file

        path = Path(path)
        if path.is_file():
            verify_file(path)
        try:
            with open(path, encoding="utf-8") as fh:
                return cls.from_dict(json.load(fh))
        except FileNotFoundError:
            raise ModelError(f"{path}: model file not found") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: not a valid alliance-nlp linear model ({exc})") from None


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    for k in ("mean", "scale", "coef", "calibration"):
        d[k] = [round(float(x), 6) for x in d[k]]
    d["intercept"] = round(float(d["intercept"]), 6)
    meta = dict(d.get("meta", {}))
    for k, v in meta.items():
        if isinstance(v, dict) and v.get("schema") == SCHEMA:
            meta[k] = _rounded(v)
    d["meta"] = meta
    return d
