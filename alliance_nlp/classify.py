"""CLASSIFY stage: tags every utterance of a Session with the six alliance markers, in context.

    from alliance_nlp.classify import MarkerClassifier
    clf = MarkerClassifier.load()          # the shipped model, offline
    session = clf(session)                 # fills u.probabilities (calibrated) and u.markers
    sessions = clf.pipe(sessions)          # many sessions, utterances encoded in shared batches

The network and the model folder format are in `alliance_nlp.model`.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from .encoder import DEFAULT_BASE_MODEL, encode_batches, load_base
from .errors import ModelError, PipelineError
from .labels import LABELS
from .model import load_context, merge_lora, pad_sequences, read_config, role_id, tokenize_utterances
from .resources import DEFAULT_MODEL_NAME, shipped_model_dir
from .session import Session

ENV_MODEL_PATH = "ALLIANCE_NLP_CLASSIFIER"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def default_model_path() -> Path:
    """$ALLIANCE_NLP_CLASSIFIER, else the shipped model (package data)."""
    env = os.environ.get(ENV_MODEL_PATH)
    return Path(env) if env else shipped_model_dir(DEFAULT_MODEL_NAME)


class MarkerClassifier:
    """Pipeline component `classify`: Session -> Session with marker probabilities and markers."""

    def __init__(self, encoder: Any, tokenizer: Any, context: Any, config: dict[str, Any], device: Any,
                 batch_size: int = 64, path: Path | None = None, dtype: Any = torch.float32):
        self.encoder, self.tokenizer, self.context = encoder.eval(), tokenizer, context.eval()
        self.config, self.device, self.batch_size = config, device, batch_size
        self.path, self.dtype = path, dtype
        cal = config["calibration"]
        self.offset = np.asarray(cal["logit_offset"], dtype=float)
        self.temperature = np.asarray(cal["temperature"], dtype=float)
        self.thresholds = np.asarray(cal["threshold"], dtype=float)
        self.max_length = int(config["max_length"])
        self.labels = LABELS

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, base_model: str | os.PathLike | None = None,
             device: str | None = None, batch_size: int = 64, dtype: str | None = None,
             allow_download: bool = False) -> MarkerClassifier:
        """Load a trained classifier offline.

        path: model folder (default: $ALLIANCE_NLP_CLASSIFIER or the shipped alliance-markers-v1).
        base_model: where to find the base encoder if not the one recorded in config.json (its
        SHA-256 is still checked when the recorded hash applies). dtype: "float32" (default) or
        "bfloat16" (faster on CPUs with native bf16; probabilities differ slightly).
        """
        path = Path(path) if path else default_model_path()
        cfg = read_config(path)
        if (dtype or "float32") not in DTYPES:
            raise ModelError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        rec = cfg["base_model"]
        name = base_model or rec["name"]
        # the recorded hash applies to the recorded model (and to the default bundled one)
        same = base_model is None or str(base_model) == rec["name"] or (
            rec["name"] == DEFAULT_BASE_MODEL and str(base_model) in ("default", DEFAULT_BASE_MODEL))
        base = load_base(name, sha256=rec.get("sha256") if same else None, allow_download=allow_download)
        merge_lora(base.model, path / "adapter")
        ctx = load_context(path, base.hidden_size, cfg["context"])
        dt = DTYPES[dtype or "float32"]
        base.model.to(device=dev, dtype=dt)
        ctx.to(dev)
        return cls(base.model, base.tokenizer, ctx, cfg, dev, batch_size, path=path, dtype=dt)

    # ---- inference ------------------------------------------------------------------------
    @staticmethod
    def session_inputs(session: Session) -> tuple[list[str], list[str]]:
        utts = session.utterances
        return [u.text for u in utts], [session.role_of(u.speaker) for u in utts]

    def logits(self, sessions: Sequence[tuple[list[str], list[str]]]) -> list[np.ndarray]:
        """Raw logits per session for (texts, roles) pairs; every utterance of every session is encoded
        once, in shared length-sorted batches."""
        texts = [t for s in sessions for t in s[0]]
        roles = [r for s in sessions for r in s[1]]
        out = []
        with torch.inference_mode():
            ids = tokenize_utterances(self.tokenizer, texts, roles, self.max_length)
            vec = encode_batches(self.encoder, self.tokenizer, ids, self.batch_size, self.device,
                                 out_dtype=torch.float32)
            pos = 0
            for s_texts, s_roles in sessions:
                n = len(s_texts)
                if n == 0:
                    out.append(np.zeros((0, len(LABELS))))
                    continue
                x, r, pad = pad_sequences([vec[pos:pos + n]], [[role_id(x) for x in s_roles]], self.device)
                out.append(self.context(x, r, pad)[0].float().cpu().numpy())
                pos += n
        return out

    def calibrate(self, z: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from raw logits (prior shift undone, temperature applied)."""
        return expit((z - self.offset) / self.temperature)

    def predict_proba(self, sessions: Sequence[Session]) -> list[np.ndarray]:
        """Calibrated probabilities, one (n_utterances x 6) array per session, labels in LABELS order."""
        return [self.calibrate(z) for z in self.logits([self.session_inputs(s) for s in sessions])]

    def _assign(self, session: Session, P: np.ndarray) -> Session:
        if not np.all(np.isfinite(P)):
            raise PipelineError(f"{session.name}: the classifier produced non-finite probabilities "
                                "(a damaged model file?)")
        for u, p in zip(session.utterances, P):
            u.probabilities = {lab: float(v) for lab, v in zip(LABELS, p)}
            u.markers = [lab for lab, v, t in zip(LABELS, p, self.thresholds) if v >= t]
        session.provenance["classify"] = {
            "model": self.config.get("name", DEFAULT_MODEL_NAME),
            "base_model": self.config["base_model"]["name"],
            "unit": session.provenance.get("segment", {}).get("unit", "utterance"),
            "thresholds": dict(zip(LABELS, map(float, self.thresholds))),
        }
        return session

    def __call__(self, session: Session) -> Session:
        return self._assign(session, self.predict_proba([session])[0])

    def pipe(self, sessions: Iterable[Session]) -> list[Session]:
        """Tag several sessions at once: their utterances share the encoder's length-sorted batches."""
        sessions = list(sessions)
        return [self._assign(s, P) for s, P in zip(sessions, self.predict_proba(sessions))]
