"""The classifier's context layer (alliance_nlp.model.ContextLayer) in numpy, for the torch-free path.

Same weights (context.safetensors) and the same arithmetic as the torch module in eval mode, except
that attention is computed on the band of keys each utterance may see (`window` before, `lookahead`
after) rather than on a full T x T matrix with the rest masked: memory and time stay linear in the
session's length.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

LN_EPS = 1e-5  # torch.nn.LayerNorm's default
_BLAS: Any = None


def single_threaded_blas() -> Any:
    """A context manager that runs numpy's BLAS on one thread. OpenBLAS's results depend on its thread
    count (last bits), so a session must get the same numbers whether it runs alone on 16 cores or in
    one of 16 single-threaded workers; the matrices here are small, so one thread costs little."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController().select(user_api="blas")
        except Exception:  # threadpoolctl missing or failing: results may differ in the last bits
            _BLAS = False
    if _BLAS is False:
        import contextlib

        return contextlib.nullcontext()
    return _BLAS.limit(limits=1)


def erf(x: np.ndarray) -> np.ndarray:
    """erf to float32 accuracy (W. J. Cody's rational approximations are overkill here: Abramowitz and
    Stegun 7.1.26 has an absolute error below 1.5e-7), in float64 to keep that accuracy."""
    x = x.astype(np.float64)
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * np.exp(-a * a)
    return s * y


def gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))).astype(np.float32)


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = LN_EPS) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = np.square(x - mu).mean(-1, keepdims=True)
    return ((x - mu) / np.sqrt(var + eps) * g + b).astype(np.float32)


class NumpyContextLayer:
    """Local transformer over one session's utterance vectors -> per-utterance label logits."""

    def __init__(self, weights: dict[str, np.ndarray], window: int, lookahead: int, heads: int, layers: int):
        self.w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.window, self.lookahead, self.heads, self.layers = int(window), int(lookahead), int(heads), int(layers)

    @classmethod
    def load(cls, path: str | os.PathLike, hidden_size: int, context_cfg: dict[str, Any]) -> NumpyContextLayer:
        from .onnx_encoder import read_safetensors

        f = Path(path) / "context.safetensors"
        w = read_safetensors(f)
        layers, heads = int(context_cfg.get("layers", 1)), int(context_cfg.get("heads", 4))
        dim = int(context_cfg.get("dim", 256))
        window, lookahead = int(context_cfg.get("window", 8)), int(context_cfg.get("lookahead", 0))
        expect = {
            "inp.0.weight": (hidden_size,),
            "inp.2.weight": (dim, hidden_size),
            "role.weight": (3, dim),
            "rel": (layers, heads, window + lookahead + 1),
            "head.weight": (6, dim),
            "norm.weight": (dim,),
        }
        expect.update({f"blocks.{n}.qkv.weight": (3 * dim, dim) for n in range(layers)})
        for k, shape in expect.items():
            if k not in w or tuple(w[k].shape) != shape:
                raise ModelError(
                    f"{f}: unreadable or mismatched context layer ({k}: expected shape {shape}, got "
                    f"{None if k not in w else tuple(w[k].shape)})"
                )
        return cls(w, window, lookahead, heads, layers)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _attention(self, x: np.ndarray, n: int) -> np.ndarray:
        T, D = x.shape
        H = self.heads
        dh = D // H
        q, k, v = self._linear(x, f"blocks.{n}.qkv").reshape(T, 3, H, dh).transpose(1, 2, 0, 3)  # (3 of) H, T, dh
        offsets = np.arange(-self.window, self.lookahead + 1)  # key = query + offset
        keys = np.arange(T)[:, None] + offsets[None, :]  # (T, W)
        valid = (keys >= 0) & (keys < T)
        keys = np.clip(keys, 0, T - 1)
        scores = np.einsum("htd,htwd->htw", q, k[:, keys]) * np.float32(1.0 / math.sqrt(dh))
        scores = scores + self.w["rel"][n][:, self.lookahead - offsets][:, None, :]  # bias by distance
        scores = np.where(valid[None], scores, -np.inf)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        p = scores / scores.sum(-1, keepdims=True)
        out = np.einsum("htw,htwd->htd", p, v[:, keys]).astype(np.float32)  # H, T, dh
        return out.transpose(1, 0, 2).reshape(T, D)

    def __call__(self, x: np.ndarray, roles: np.ndarray) -> np.ndarray:
        """x: (T, hidden) utterance vectors of one session; roles: (T,) role ids -> (T, 6) logits."""
        with single_threaded_blas():
            return self._forward(np.asarray(x, dtype=np.float32), roles)

    def _forward(self, x: np.ndarray, roles: np.ndarray) -> np.ndarray:
        w = self.w
        h = self._linear(layer_norm(x, w["inp.0.weight"], w["inp.0.bias"]), "inp.2") + w["role.weight"][roles]
        for n in range(self.layers):
            p = f"blocks.{n}"
            a = layer_norm(h, w[f"{p}.ln1.weight"], w[f"{p}.ln1.bias"])
            h = h + self._linear(self._attention(a, n), f"{p}.out")
            f = gelu(self._linear(layer_norm(h, w[f"{p}.ln2.weight"], w[f"{p}.ln2.bias"]), f"{p}.ff.0"))
            h = h + self._linear(f, f"{p}.ff.3")
        return self._linear(layer_norm(h, w["norm.weight"], w["norm.bias"]), "head").astype(np.float32)
