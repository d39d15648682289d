"""CLASSIFY stage: tags every utterance of a Session with the six alliance markers, in context.

    from alliance_nlp.classify import MarkerClassifier
    clf = MarkerClassifier.load()          # the shipped model, offline
    session = clf(session)                 # fills u.probabilities (calibrated) and u.markers
    sessions = clf.pipe(sessions)          # many sessions, utterances encoded in shared batches

Two runtimes read the same model folder:
- `onnx` (the default on CPU when onnxruntime is installed and the base encoder is BERT-style): the
  merged encoder on ONNX Runtime (`alliance_nlp.onnx_encoder`) and the context layer in numpy
  (`alliance_nlp.context_numpy`). No torch is imported; precisions fp32 and int8.
- `torch`: transformers + the torch modules of `alliance_nlp.model` (training uses this one); any
  device, precisions fp32, bf16 and int8.
Reduced precisions are offered only where they passed the accuracy gate (`alliance_nlp.precision`).
The network and the model folder format are in `alliance_nlp.model` and `alliance_nlp.artifact`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import read_config, role_id, with_role
from .errors import ModelError, PipelineError
from .labels import LABELS
from .resources import DEFAULT_MODEL_NAME, shipped_model_dir
from .session import Session

ENV_MODEL_PATH = "ALLIANCE_NLP_CLASSIFIER"
DTYPES = {"float32": "fp32", "bfloat16": "bf16"}  # the older `dtype=` spelling of `precision=`
BACKENDS = ("auto", "onnx", "torch")
BACKEND_NAMES = {"onnx": "onnxruntime", "torch": "torch"}


def default_model_path() -> Path:
    """$ALLIANCE_NLP_CLASSIFIER, else the shipped model (package data)."""
    env = os.environ.get(ENV_MODEL_PATH)
    return Path(env) if env else shipped_model_dir(DEFAULT_MODEL_NAME)


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "tokenizers"))


def gpu_present() -> bool:
    """An NVIDIA device node exists (checked without importing torch): `device=None` then means torch on cuda."""
    return os.path.exists("/dev/nvidiactl")


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings (scipy.special.expit without importing scipy)."""
    return np.exp(-np.logaddexp(0.0, -x))


def resolve_settings(
    path: str | os.PathLike | None = None,
    *,
    base_model: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: str | None = None,
    precision: str | None = None,
    backend: str | None = None,
    config: dict[str, Any] | None = None,
    check_gate: bool = True,
) -> tuple[str, str, str]:
    """(precision, backend, why) that `MarkerClassifier.load` would use, decided without loading anything:
    `auto` resolved for this CPU, the backend chosen, and a reduced precision checked against the gate
    (ModelError when it is not offered; `check_gate=False` is for the gate itself). Batch runs resolve this
    once and pass it to every worker."""
    from . import precision as prec
    from .encoder import resolve_base

    path = Path(path) if path else default_model_path()
    cfg = config or read_config(path)
    if dtype is not None and dtype not in DTYPES:
        raise ModelError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    want = prec.normalize(precision if precision is not None else DTYPES.get(dtype or "float32"))
    backend = (backend or "auto").lower()
    if backend not in BACKENDS:
        raise ModelError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    _, location, _ = resolve_base(base_model or cfg["base_model"]["name"])
    on_cpu = device == "cpu" or (device is None and not gpu_present())

    def backend_for(p: str) -> str:
        if backend != "auto":
            return backend
        from .onnx_encoder import supports

        return "onnx" if on_cpu and p != "bf16" and onnx_available() and supports(location) else "torch"

    why = "requested"
    if want == "auto":
        want, why = prec.choose(path, lambda p: BACKEND_NAMES[backend_for(p)])
    chosen = backend_for(want)
    if chosen == "onnx" and want == "bf16":
        raise ModelError("precision bf16 runs on the torch backend only (ONNX Runtime has no bf16 CPU kernels)")
    reason = prec.check_offered(path, want, BACKEND_NAMES[chosen]) if check_gate else None
    if reason:
        raise ModelError(f"{path}: {reason}")
    return want, chosen, why


class MarkerClassifier:
    """Pipeline component `classify`: Session -> Session with marker probabilities and markers.

    Built by `load()`; training builds it directly from torch modules (encoder, tokenizer, context)."""

    def __init__(
        self,
        encoder: Any,
        tokenizer: Any,
        context: Any,
        config: dict[str, Any],
        device: Any = None,
        batch_size: int = 64,
        path: Path | None = None,
        dtype: Any = None,
        *,
        backend: str = "torch",
        precision: str = "fp32",
    ):
        self.backend = backend
        if backend == "torch":
            encoder, context = encoder.eval(), context.eval()
        self.encoder, self.tokenizer, self.context = encoder, tokenizer, context
        self.config, self.device, self.batch_size = config, device, batch_size
        self.path, self.dtype, self.precision = path, dtype, precision
        cal = config["calibration"]
        self.offset = np.asarray(cal["logit_offset"], dtype=float)
        self.temperature = np.asarray(cal["temperature"], dtype=float)
        self.thresholds = np.asarray(cal["threshold"], dtype=float)
        self.max_length = int(config["max_length"])
        self.labels = LABELS

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        base_model: str | os.PathLike | None = None,
        device: str | None = None,
        batch_size: int = 64,
        dtype: str | None = None,
        allow_download: bool = False,
        precision: str | None = None,
        backend: str | None = None,
        threads: int | None = None,
        check_gate: bool = True,
    ) -> MarkerClassifier:
        """Load a trained classifier offline.

        path: model folder (default: $ALLIANCE_NLP_CLASSIFIER or the shipped alliance-markers-v2).
        base_model: where to find the base encoder if not the one recorded in config.json (its
        SHA-256 is still checked when the recorded hash applies).
        precision: "fp32" (default), "bf16", "int8" or "auto" (the fastest one this CPU has matrix units
        for that passed the accuracy gate for this model); `dtype="float32"|"bfloat16"` is the older
        spelling. A reduced precision that has not passed the gate is refused (ModelError).
        backend: "auto" (default: ONNX Runtime on CPU where it can run the model, else torch), "onnx" or
        "torch". device: "cpu", "cuda", ... (torch; default: cuda when an NVIDIA GPU is present, else cpu).
        threads: intra-op threads (default: the runtime's own choice, or $ALLIANCE_NLP_THREADS).
        """
        from .encoder import DEFAULT_BASE_MODEL

        path = Path(path) if path else default_model_path()
        cfg = read_config(path)
        want, chosen, _why = resolve_settings(
            path,
            base_model=base_model,
            device=device,
            dtype=dtype,
            precision=precision,
            backend=backend,
            config=cfg,
            check_gate=check_gate,
        )
        rec = cfg["base_model"]
        name = base_model or rec["name"]
        # the recorded hash applies to the recorded model (and to the default bundled one)
        same = (
            base_model is None
            or str(base_model) == rec["name"]
            or (rec["name"] == DEFAULT_BASE_MODEL and str(base_model) in ("default", DEFAULT_BASE_MODEL))
        )
        sha = rec.get("sha256") if same else None
        if chosen == "onnx":
            return cls._load_onnx(path, cfg, name, sha, allow_download, want, batch_size, threads)
        return cls._load_torch(path, cfg, name, sha, allow_download, want, device, batch_size, threads)

    @classmethod
    def _load_onnx(
        cls,
        path: Path,
        cfg: dict[str, Any],
        name: str | os.PathLike,
        sha: str | None,
        allow_download: bool,
        precision: str,
        batch_size: int,
        threads: int | None,
    ) -> MarkerClassifier:
        from .context_numpy import NumpyContextLayer
        from .encoder import EncoderError, verified_base
        from .onnx_encoder import OnnxEncoder, supports

        # the weights' hash is checked on the very bytes the encoder is built from (one read of the file)
        _, location, expected, _ = verified_base(name, sha256=sha, allow_download=allow_download, verify=False)
        if not supports(location):
            raise EncoderError(
                f"{name}: the ONNX backend runs BERT-style encoders from a local folder; use backend='torch'"
            )
        enc = OnnxEncoder(
            location,
            path / "adapter",
            precision=precision,
            threads=threads,
            max_length=int(cfg["max_length"]),
            sha256=expected,
        )
        ctx = NumpyContextLayer.load(path, enc.hidden_size, cfg["context"])
        return cls(enc, enc.tokenizer, ctx, cfg, "cpu", batch_size, path=path, backend="onnx", precision=precision)

    @classmethod
    def _load_torch(
        cls,
        path: Path,
        cfg: dict[str, Any],
        name: str | os.PathLike,
        sha: str | None,
        allow_download: bool,
        precision: str,
        device: str | None,
        batch_size: int,
        threads: int | None,
    ) -> MarkerClassifier:
        import torch

        from .encoder import load_base
        from .model import load_context, merge_lora

        if threads:
            torch.set_num_threads(int(threads))
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        base = load_base(name, sha256=sha, allow_download=allow_download)
        merge_lora(base.model, path / "adapter")
        ctx = load_context(path, base.hidden_size, cfg["context"])
        dt = torch.bfloat16 if precision == "bf16" else torch.float32
        base.model.to(device=dev, dtype=dt)
        if precision == "int8":
            if dev.type != "cpu":
                raise ModelError("precision int8 (dynamic quantization) runs on the CPU only")
            from torch.ao.quantization import quantize_dynamic

            base.model = quantize_dynamic(base.model, {torch.nn.Linear}, dtype=torch.qint8)
        ctx.to(dev)
        return cls(
            base.model,
            base.tokenizer,
            ctx,
            cfg,
            dev,
            batch_size,
            path=path,
            dtype=dt,
            backend="torch",
            precision=precision,
        )

    # ---- inference ------------------------------------------------------------------------
    @staticmethod
    def session_inputs(session: Session) -> tuple[list[str], list[str]]:
        utts = session.utterances
        return [u.text for u in utts], [session.role_of(u.speaker) for u in utts]

    def logits(self, sessions: Sequence[tuple[list[str], list[str]]]) -> list[np.ndarray]:
        """Raw logits per session for (texts, roles) pairs; every utterance of every session is encoded
        once, in shared batches."""
        if self.backend == "onnx":
            return self._logits_onnx(sessions)
        return self._logits_torch(sessions)

    def _logits_onnx(self, sessions: Sequence[tuple[list[str], list[str]]]) -> list[np.ndarray]:
        ids = self.encoder.tokenize([with_role(t, r) for s in sessions for t, r in zip(*s)])
        vec = self.encoder.encode_ids(ids)
        out, pos = [], 0
        for s_texts, s_roles in sessions:
            n = len(s_texts)
            if n == 0:
                out.append(np.zeros((0, len(LABELS))))
                continue
            out.append(self.context(vec[pos : pos + n], np.array([role_id(r) for r in s_roles], dtype=np.int64)))
            pos += n
        return out

    def _logits_torch(self, sessions: Sequence[tuple[list[str], list[str]]]) -> list[np.ndarray]:
        import torch

        from .encoder import encode_batches
        from .model import pad_sequences, tokenize_utterances

        texts = [t for s in sessions for t in s[0]]
        roles = [r for s in sessions for r in s[1]]
        out = []
        with torch.inference_mode():
            ids = tokenize_utterances(self.tokenizer, texts, roles, self.max_length)
            vec = encode_batches(
                self.encoder, self.tokenizer, ids, self.batch_size, self.device, out_dtype=torch.float32
            )
            pos = 0
            for s_texts, s_roles in sessions:
                n = len(s_texts)
                if n == 0:
                    out.append(np.zeros((0, len(LABELS))))
                    continue
                x, r, _ = pad_sequences([vec[pos : pos + n]], [[role_id(x) for x in s_roles]], self.device)
                out.append(self.context.forward_chunked(x, r)[0].float().cpu().numpy())  # one session: no padding
                pos += n
        return out

    def calibrate(self, z: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from raw logits (prior shift undone, temperature applied)."""
        return expit((np.asarray(z, dtype=float) - self.offset) / self.temperature)

    def predict_proba(self, sessions: Sequence[Session]) -> list[np.ndarray]:
        """Calibrated probabilities, one (n_utterances x 6) array per session, labels in LABELS order."""
        return [self.calibrate(z) for z in self.logits([self.session_inputs(s) for s in sessions])]

    def _assign(self, session: Session, P: np.ndarray) -> Session:
        if not np.all(np.isfinite(P)):
            raise PipelineError(
                f"{session.name}: the classifier produced non-finite probabilities (a damaged model file?)"
            )
        for u, p in zip(session.utterances, P):
            u.probabilities = {lab: float(v) for lab, v in zip(LABELS, p)}
            u.markers = [lab for lab, v, t in zip(LABELS, p, self.thresholds) if v >= t]
        session.provenance["classify"] = {
            "model": self.config.get("name", DEFAULT_MODEL_NAME),
            "base_model": self.config["base_model"]["name"],
            "unit": session.provenance.get("segment", {}).get("unit", "utterance"),
            "thresholds": dict(zip(LABELS, map(float, self.thresholds))),
            "precision": self.precision,
            "runtime": BACKEND_NAMES.get(self.backend, self.backend),
        }
        return session

    def __call__(self, session: Session) -> Session:
        return self._assign(session, self.predict_proba([session])[0])

    def pipe(self, sessions: Iterable[Session]) -> list[Session]:
        """Tag several sessions at once: their utterances share the encoder's batches."""
        sessions = list(sessions)
        return [self._assign(s, P) for s, P in zip(sessions, self.predict_proba(sessions))]
