"""Numeric precision of the classifier: what the CPU offers, what passed the accuracy gate, and the default.

Precisions: `fp32` (the reference), `bf16` (torch, bfloat16 weights and activations; fast only on CPUs
with bf16 matrix units: AMX or AVX512-BF16) and `int8` (dynamic quantization: int8 weights, activations
quantized per call; ONNX Runtime, or torch where ONNX Runtime is missing).

A reduced precision is offered for a model only when it passed the accuracy gate on that model
(`python -m evaluation.precision_gate`: held-out test split, through the product): marker agreement
with fp32 >= 99% and mean absolute probability difference <= 0.01. The results are stored in
`resources/precision_gate.json`, keyed by a digest of the model's files, so a retrained model is not
covered by its predecessor's gate.

`auto` picks, per machine, the fastest precision the CPU has matrix units for among those that passed:
bf16 on AMX-BF16, int8 on VNNI/AMX-INT8, bf16 on AVX512-BF16; fp32 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

PRECISIONS = ("fp32", "bf16", "int8")
ALIASES = {"float32": "fp32", "bfloat16": "bf16", "qint8": "int8", "fp32": "fp32", "bf16": "bf16", "int8": "int8"}
GATE_FILE_NAME = "precision_gate.json"
GATE_FORMAT = "alliance-nlp/precision-gate"
MIN_AGREEMENT = 0.99
MAX_MEAN_ABS_DIFF = 0.01
MATRIX_FLAGS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "fma")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matrix_features(flags: frozenset[str] | None = None) -> dict[str, bool]:
    flags = cpu_flags() if flags is None else flags
    return {f: f in flags for f in MATRIX_FLAGS}


def preferred_order(flags: frozenset[str] | None = None) -> list[str]:
    """Reduced precisions this CPU has matrix units for, fastest first (empty: fp32 is the choice)."""
    f = cpu_flags() if flags is None else flags
    if "amx_bf16" in f:
        return ["bf16", "int8"]
    if {"avx512_vnni", "avx_vnni", "amx_int8"} & f:
        return ["int8", "bf16"] if "avx512_bf16" in f else ["int8"]
    if "avx512_bf16" in f:
        return ["bf16"]
    return []


def model_digest(model_dir: str | os.PathLike) -> str:
    """SHA-256 over the model folder's own files (config, adapter, context layer; not the base)."""
    root = Path(model_dir)
    h = hashlib.sha256()
    for f in sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".safetensors") and p.name != GATE_FILE_NAME
    ):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def gate_file() -> Path:
    from .resources import resource_path

    return resource_path(GATE_FILE_NAME)


def gate_results(model_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """{"int8-onnxruntime": {"passed": bool, "agreement": ..., ...}, ...} for this model ({} if never gated)."""
    from .integrity import verify_file

    f = Path(path) if path else gate_file()
    if f.is_file():
        verify_file(f)
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != GATE_FORMAT:
        return {}
    entry = data.get("models", {}).get(model_digest(model_dir), {})
    return dict(entry.get("results", {})) if isinstance(entry, dict) else {}


def gate_key(precision: str, backend: str) -> str:
    return f"{precision}-{backend}"


def check_offered(model_dir: str | os.PathLike, precision: str, backend: str) -> str | None:
    """None when `precision` on `backend` is offered for this model, else the one-line reason it is not."""
    if precision == "fp32":
        return None
    res = gate_results(model_dir).get(gate_key(precision, backend))
    if not res:
        return (
            f"precision {precision} ({backend}) has not passed the accuracy gate for this model; measure it "
            "with `python -m evaluation.precision_gate` or use fp32"
        )
    if not res.get("passed"):
        return (
            f"precision {precision} ({backend}) failed the accuracy gate for this model (marker agreement "
            f"{100 * res.get('agreement', 0):.2f}%, needs >= {100 * MIN_AGREEMENT:.0f}%; mean absolute "
            f"probability difference {res.get('mean_abs_diff', float('nan')):.4f}, needs <= "
            f"{MAX_MEAN_ABS_DIFF}); use fp32"
        )
    return None


def normalize(precision: str | None) -> str:
    """fp32, bf16, int8 or auto from the accepted spellings (None -> fp32)."""
    from .errors import ModelError

    if precision is None:
        return "fp32"
    p = str(precision).lower()
    if p == "auto":
        return p
    if p not in ALIASES:
        raise ModelError(f"precision {precision!r}: choose one of fp32, bf16, int8, auto")
    return ALIASES[p]


def choose(model_dir: str | os.PathLike, backend_for: Any, flags: frozenset[str] | None = None) -> tuple[str, str]:
    """(precision, why) for `auto`: the first reduced precision the CPU has matrix units for that passed
    the gate on the backend that would run it (`backend_for(precision) -> name`), else fp32."""
    order = preferred_order(flags)
    for p in order:
        if check_offered(model_dir, p, backend_for(p)) is None:
            return p, f"auto: the CPU has {p} matrix units and {p} passed the accuracy gate"
    if order:
        return "fp32", f"auto: {', '.join(order)} not gated or failed the gate for this model"
    return "fp32", "auto: no bf16 or int8 matrix units on this CPU"
