"""Alliance-marker classifier: tags every utterance of a Session with the six markers, in context.

    from alliance_nlp.classify import MarkerClassifier
    clf = MarkerClassifier.load()          # the shipped model, offline
    session = clf(session)                 # fills u.probabilities (calibrated) and u.markers

Architecture (each utterance is encoded once, whatever the context size):
1. utterance encoder: the base sentence encoder (all-MiniLM-L6-v2) with a LoRA adapter, reading the
   utterance with its speaker role as a text prefix ("therapist: ...", "client: ..."; no prefix for an
   unknown role), mean-pooled;
2. context layer: a small transformer over the session's sequence of utterance vectors plus a learned
   role embedding, each utterance attending to itself and the previous `window` utterances (optionally
   `lookahead` following ones) with a learned bias per head and distance;
3. a 6-way multi-label head. Probabilities are calibrated per label: the pos_weight prior shift is
   undone and a temperature fitted on validation is applied; markers use per-label thresholds chosen on
   validation (max F1).

The shipped artifact (models/alliance-markers-v1/) holds only the LoRA adapter, the context layer and
head, and config.json (base model id and SHA-256, labels, calibration, training data version); the
base weights come from the verified base encoder (alliance_nlp.encoder) and the adapter is merged into
them at load.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .labels import LABELS
from .session import Session

ARTIFACT_FORMAT = "alliance-nlp/marker-classifier"
ARTIFACT_VERSION = 1
DEFAULT_MODEL_NAME = "alliance-markers-v1"
REPO_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / DEFAULT_MODEL_NAME
ENV_MODEL_PATH = "ALLIANCE_NLP_CLASSIFIER"
ROLE_IDS = {"therapist": 0, "client": 1}
NEUTRAL_ROLE = 2
N_ROLES = 3
ROLE_PREFIX = {"therapist": "therapist: ", "client": "client: "}


class ModelNotFoundError(FileNotFoundError):
    pass


def role_id(role: str | None) -> int:
    return ROLE_IDS.get(role or "", NEUTRAL_ROLE)


def with_role(text: str, role: str | None) -> str:
    """The encoder input: the utterance prefixed by its speaker role (no prefix when unknown)."""
    return ROLE_PREFIX.get(role or "", "") + text


def default_model_path() -> Path:
    """$ALLIANCE_NLP_CLASSIFIER, else the repository's models/alliance-markers-v1 (editable install)."""
    env = os.environ.get(ENV_MODEL_PATH)
    return Path(env) if env else REPO_MODEL_DIR


# ---- model ------------------------------------------------------------------------------------
class Block(nn.Module):
    """Pre-norm transformer block whose attention takes an additive bias (local window + distance)."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.heads, self.p = heads, dropout
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, bias):
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.p if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(B, T, D)))
        return x + self.drop(self.ff(self.ln2(x)))


class ContextLayer(nn.Module):
    """Local transformer over a session's utterance vectors -> per-utterance label logits.

    Utterance i attends to utterances i-window .. i+lookahead (itself included), with a learned bias
    per head and distance; there are no absolute positions, so a chunk of a session and the whole
    session give the same result for an utterance whose window lies inside the chunk.
    """

    def __init__(self, in_dim: int, dim: int = 256, layers: int = 1, heads: int = 4, ffn: int = 512,
                 window: int = 8, lookahead: int = 0, dropout: float = 0.1, n_labels: int = len(LABELS),
                 n_roles: int = N_ROLES):
        super().__init__()
        self.window, self.lookahead, self.heads = window, lookahead, heads
        # the encoder's mean-pooled vectors have a small, model-dependent scale: normalise them first
        self.inp = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, dim))
        self.role = nn.Embedding(n_roles, dim)
        nn.init.normal_(self.role.weight, std=0.02)   # not N(0, 1), which would drown the utterance
        self.rel = nn.Parameter(torch.zeros(layers, heads, window + lookahead + 1))
        self.blocks = nn.ModuleList(Block(dim, heads, ffn, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_labels)

    def attention_bias(self, T: int, pad, layer: int, device):
        i = torch.arange(T, device=device)
        d = i[:, None] - i[None, :]                       # query - key: > 0 means the key is earlier
        allowed = (d <= self.window) & (d >= -self.lookahead)
        idx = (d + self.lookahead).clamp(0, self.window + self.lookahead)
        bias = self.rel[layer][:, idx].masked_fill(~allowed, float("-inf")).unsqueeze(0)   # (1, H, T, T)
        if pad is not None:                                # padded keys are never attended (self always is)
            eye = torch.eye(T, dtype=torch.bool, device=device)
            bias = bias.masked_fill(pad[:, None, None, :] & ~eye, float("-inf"))
        return bias

    def forward(self, x, roles, pad=None):
        """x: (B, T, in_dim) utterance vectors; roles: (B, T) role ids; pad: (B, T) bool, True = padding."""
        h = self.inp(x) + self.role(roles)
        T = h.shape[1]
        for n, blk in enumerate(self.blocks):
            h = blk(h, self.attention_bias(T, pad, n, h.device).to(h.dtype))
        return self.head(self.norm(h))


def encode_batches(model, tokenizer, ids: Sequence[Sequence[int]], batch_size: int, device, out_dtype=None):
    """Mean-pooled vectors for pre-tokenized inputs, in length-sorted batches, returned in input order.

    Works with or without autograd (training calls it with gradients on)."""
    from .encoder import length_sorted_batches, mean_pool

    parts, order = [], []
    for idx in length_sorted_batches([len(x) for x in ids], batch_size):
        batch = tokenizer.pad({"input_ids": [list(ids[i]) for i in idx]}, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        h = model(**batch).last_hidden_state
        parts.append(mean_pool(h, batch["attention_mask"]))
        order.extend(idx)
    if not parts:
        return torch.zeros(0, model.config.hidden_size, device=device)
    out = torch.cat(parts)
    if out_dtype is not None:
        out = out.to(out_dtype)
    inv = torch.empty(len(order), dtype=torch.long, device=out.device)
    inv[torch.tensor(order, device=out.device)] = torch.arange(len(order), device=out.device)
    return out[inv]


def tokenize_utterances(tokenizer, texts: Sequence[str], roles: Sequence[str | None], max_length: int):
    return tokenizer([with_role(t, r) for t, r in zip(texts, roles)], truncation=True,
                     max_length=max_length)["input_ids"]


def pad_sequences(vectors: list, roles: list[list[int]], device):
    """Stack per-session (T_i, D) tensors into (B, T, D) with role ids and a padding mask."""
    T = max(v.shape[0] for v in vectors)
    B, D = len(vectors), vectors[0].shape[1]
    x = vectors[0].new_zeros(B, T, D)
    r = torch.full((B, T), NEUTRAL_ROLE, dtype=torch.long, device=device)
    pad = torch.ones(B, T, dtype=torch.bool, device=device)
    for b, (v, rr) in enumerate(zip(vectors, roles)):
        x[b, :len(rr)] = v
        r[b, :len(rr)] = torch.tensor(rr, dtype=torch.long, device=device)
        pad[b, :len(rr)] = False
    return x, r, pad


# ---- artifact ---------------------------------------------------------------------------------
def save_artifact(path: str | os.PathLike, encoder, context, config: dict[str, Any]) -> None:
    """Write adapter/ (peft LoRA), context.safetensors and config.json; never the base weights."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(str(path / "adapter"))
    (path / "adapter" / "README.md").unlink(missing_ok=True)   # peft's placeholder card; ours is ../README.md
    ac = path / "adapter" / "adapter_config.json"
    acfg = json.loads(ac.read_text())
    acfg["base_model_name_or_path"] = config["base_model"]["name"]   # not a local site-packages path
    ac.write_text(json.dumps(acfg, indent=1) + "\n")
    save_file({k: v.detach().cpu().contiguous() for k, v in context.state_dict().items()},
              str(path / "context.safetensors"))
    cfg = dict(config, format=ARTIFACT_FORMAT, format_version=ARTIFACT_VERSION, labels=list(LABELS))
    (path / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    f = path / "config.json"
    if not f.is_file():
        raise ModelNotFoundError(
            f"{path}: no trained alliance-marker classifier here (config.json missing). Train it with\n"
            f"  python training/train_classifier.py --config training/configs/default.yaml --output {path}\n"
            f"(needs the annotation release: python -m alliance_nlp.data.annotations build), or pass "
            f"path=<model folder> / set ${ENV_MODEL_PATH}.")
    cfg = json.loads(f.read_text())
    if cfg.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"{f}: not an alliance-marker classifier (format={cfg.get('format')!r})")
    if cfg.get("format_version") != ARTIFACT_VERSION:
        raise ValueError(f"{f}: unsupported format_version {cfg.get('format_version')!r}")
    if tuple(cfg.get("labels", ())) != LABELS:
        raise ValueError(f"{f}: label order {cfg.get('labels')} differs from {list(LABELS)}")
    return cfg


class MarkerClassifier:
    """Pipeline component `classify`: Session -> Session with marker probabilities and markers."""

    def __init__(self, encoder, tokenizer, context, config: dict[str, Any], device, batch_size: int = 64):
        self.encoder, self.tokenizer, self.context = encoder.eval(), tokenizer, context.eval()
        self.config, self.device, self.batch_size = config, device, batch_size
        cal = config["calibration"]
        self.offset = torch.tensor(cal["logit_offset"], dtype=torch.float32)
        self.temperature = torch.tensor(cal["temperature"], dtype=torch.float32)
        self.thresholds = np.asarray(cal["threshold"], dtype=float)
        self.max_length = int(config["max_length"])
        self.labels = LABELS

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, base_model: str | os.PathLike | None = None,
             device: str | None = None, batch_size: int = 64, dtype: str | None = None,
             allow_download: bool = False, **_ignored: Any) -> "MarkerClassifier":
        """Load a trained classifier offline.

        path: model folder (default: $ALLIANCE_NLP_CLASSIFIER or the repo's models/alliance-markers-v1).
        base_model: where to find the base encoder if not the one recorded in config.json (its
        SHA-256 is still checked when the recorded hash applies). dtype: "float32" (default) or
        "bfloat16" (faster on CPUs with native bf16; probabilities differ slightly).
        """
        from peft import PeftModel
        from safetensors.torch import load_file

        from .encoder import DEFAULT_BASE_MODEL, load_base

        path = Path(path) if path else default_model_path()
        cfg = read_config(path)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        rec = cfg["base_model"]
        name = base_model or rec["name"]
        # the recorded hash applies to the recorded model (and to the default bundled one)
        same = base_model is None or str(base_model) == rec["name"] or rec["name"] == DEFAULT_BASE_MODEL and \
            str(base_model) in ("default", DEFAULT_BASE_MODEL)
        base = load_base(name, sha256=rec.get("sha256") if same else None, allow_download=allow_download)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(base.model, str(path / "adapter")).merge_and_unload()
        ctx = ContextLayer(base.hidden_size, **cfg["context"])
        ctx.load_state_dict(load_file(str(path / "context.safetensors")))
        dt = {"float32": torch.float32, None: torch.float32, "bfloat16": torch.bfloat16}[dtype]
        model.to(device=device, dtype=dt)
        ctx.to(device)
        clf = cls(model, base.tokenizer, ctx, cfg, device, batch_size)
        clf.dtype = dt
        clf.path = path
        return clf

    # ---- inference ------------------------------------------------------------------------
    def session_inputs(self, session: Session) -> tuple[list[str], list[str]]:
        utts = session.utterances
        return [u.text for u in utts], [session.role_of(u.speaker) for u in utts]

    def logits(self, sessions: Sequence[tuple[list[str], list[str]]]) -> list[np.ndarray]:
        """Raw logits per session for (texts, roles) pairs; every utterance encoded once."""
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
        return 1.0 / (1.0 + np.exp(-(z - self.offset.numpy()) / self.temperature.numpy()))

    def predict_proba(self, sessions: Sequence[Session]) -> list[np.ndarray]:
        """Calibrated probabilities, one (n_utterances x 6) array per session, labels in LABELS order."""
        return self.predict_proba_inputs([self.session_inputs(s) for s in sessions])

    def predict_proba_inputs(self, sessions: Sequence[tuple[list[str], list[str]]]) -> list[np.ndarray]:
        """As predict_proba, for sessions given as (utterance texts, speaker roles) pairs."""
        return [self.calibrate(z) for z in self.logits(sessions)]

    def __call__(self, session: Session) -> Session:
        P = self.predict_proba([session])[0]
        for u, p in zip(session.utterances, P):
            u.probabilities = {lab: float(v) for lab, v in zip(LABELS, p)}
            u.markers = [lab for lab, v, t in zip(LABELS, p, self.thresholds) if v >= t]
        session.meta.setdefault("classifier", {
            "model": self.config.get("name", DEFAULT_MODEL_NAME),
            "base_model": self.config["base_model"]["name"],
            "thresholds": dict(zip(LABELS, map(float, self.thresholds))),
        })
        return session
