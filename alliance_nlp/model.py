"""The marker classifier's network and its artifact format.

Architecture (each utterance is encoded once, whatever the context size):
1. utterance encoder: the base sentence encoder (all-MiniLM-L6-v2) with a LoRA adapter, reading the
   utterance with its speaker role as a text prefix ("therapist: ...", "client: ..."; no prefix for an
   unknown role), mean-pooled;
2. context layer: a small transformer over the session's sequence of utterance vectors plus a learned
   role embedding, each utterance attending to itself and the previous `window` utterances (and
   `lookahead` following ones) with a learned bias per head and distance;
3. a 6-way multi-label head. Probabilities are calibrated per label (the pos_weight prior shift undone,
   a temperature fitted on validation); markers use per-label thresholds chosen on validation.

A model folder holds adapter/ (LoRA weights in the peft layout), context.safetensors (context layer and
head) and config.json (base model id and SHA-256, labels, calibration, training data); never the base
weights. The adapter is merged into the base weights at load with plain torch, so using a model needs
no peft (training does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .artifact import (  # noqa: F401  (re-exported: training and evaluation import them from here)
    ARTIFACT_FORMAT,
    ARTIFACT_VERSION,
    N_ROLES,
    NEUTRAL_ROLE,
    ROLE_IDS,
    ROLE_PREFIX,
    read_config,
    role_id,
    with_role,
)
from .errors import ModelError
from .labels import LABELS


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

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
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

    def __init__(
        self,
        in_dim: int,
        dim: int = 256,
        layers: int = 1,
        heads: int = 4,
        ffn: int = 512,
        window: int = 8,
        lookahead: int = 0,
        dropout: float = 0.1,
        n_labels: int = len(LABELS),
        n_roles: int = N_ROLES,
    ):
        super().__init__()
        self.window, self.lookahead, self.heads = window, lookahead, heads
        # the encoder's mean-pooled vectors have a small, model-dependent scale: normalise them first
        self.inp = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, dim))
        self.role = nn.Embedding(n_roles, dim)
        nn.init.normal_(self.role.weight, std=0.02)  # not N(0, 1), which would drown the utterance
        self.rel = nn.Parameter(torch.zeros(layers, heads, window + lookahead + 1))
        self.blocks = nn.ModuleList(Block(dim, heads, ffn, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_labels)

    def attention_bias(self, T: int, pad: torch.Tensor | None, layer: int, device: Any) -> torch.Tensor:
        i = torch.arange(T, device=device)
        d = i[:, None] - i[None, :]  # query - key: > 0 means the key is earlier
        allowed = (d <= self.window) & (d >= -self.lookahead)
        idx = (d + self.lookahead).clamp(0, self.window + self.lookahead)
        bias = self.rel[layer][:, idx].masked_fill(~allowed, float("-inf")).unsqueeze(0)  # (1, H, T, T)
        if pad is not None:  # padded keys are never attended (self always is)
            eye = torch.eye(T, dtype=torch.bool, device=device)
            bias = bias.masked_fill(pad[:, None, None, :] & ~eye, float("-inf"))
        return bias

    def features(self, x: torch.Tensor, roles: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        """The contextual utterance vectors the head reads (training attaches auxiliary heads here)."""
        h = self.inp(x) + self.role(roles)
        T = h.shape[1]
        for n, blk in enumerate(self.blocks):
            h = blk(h, self.attention_bias(T, pad, n, h.device).to(h.dtype))
        return self.norm(h)

    def forward(self, x: torch.Tensor, roles: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, in_dim) utterance vectors; roles: (B, T) role ids; pad: (B, T) bool, True = padding."""
        return self.head(self.features(x, roles, pad))

    def forward_chunked(self, x: torch.Tensor, roles: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """`forward` for one long session (B = 1) in overlapping chunks, with the same result: each layer
        reaches `window` back and `lookahead` ahead, so a chunk padded by layers x that much gives
        exactly its utterances' outputs, and memory grows linearly with the session, not with its
        square (the attention bias of one chunk is (H, c, c), not (H, T, T))."""
        T, n_layers = x.shape[1], len(self.blocks)
        back, ahead = n_layers * self.window, n_layers * self.lookahead
        if T <= chunk + back + ahead:
            return self(x, roles)
        outs = []
        for s in range(0, T, chunk):
            e = min(T, s + chunk)
            a, b = max(0, s - back), min(T, e + ahead)
            outs.append(self(x[:, a:b], roles[:, a:b])[:, s - a : e - a])
        return torch.cat(outs, dim=1)


def tokenize_utterances(
    tokenizer: Any, texts: Sequence[str], roles: Sequence[str | None], max_length: int
) -> list[list[int]]:
    return tokenizer([with_role(t, r) for t, r in zip(texts, roles)], truncation=True, max_length=max_length)[
        "input_ids"
    ]


def pad_sequences(
    vectors: list[torch.Tensor], roles: list[list[int]], device: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack per-session (T_i, D) tensors into (B, T, D) with role ids and a padding mask."""
    T = max(v.shape[0] for v in vectors)
    B, D = len(vectors), vectors[0].shape[1]
    x = vectors[0].new_zeros(B, T, D)
    r = torch.full((B, T), NEUTRAL_ROLE, dtype=torch.long, device=device)
    pad = torch.ones(B, T, dtype=torch.bool, device=device)
    for b, (v, rr) in enumerate(zip(vectors, roles)):
        x[b, : len(rr)] = v
        r[b, : len(rr)] = torch.tensor(rr, dtype=torch.long, device=device)
        pad[b, : len(rr)] = False
    return x, r, pad


# ---- artifact (read_config is in alliance_nlp.artifact) --------------------------------------
def merge_lora(model: nn.Module, adapter_dir: str | os.PathLike) -> int:
    """Add a LoRA adapter (peft's saved layout) into `model`'s weights: W += (alpha / r) * B @ A.

    Returns the number of merged modules. Only plain LoRA is supported (no DoRA, rsLoRA or
    fan_in_fan_out), which is what our training recipe writes; anything else is refused."""
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    cfg_file, weights = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    try:
        acfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error type for damaged files
        raise ModelError(f"{adapter_dir}: unreadable LoRA adapter ({str(exc).splitlines()[0]})") from None
    if acfg.get("peft_type") != "LORA" or acfg.get("use_dora") or acfg.get("use_rslora") or acfg.get("fan_in_fan_out"):
        raise ModelError(f"{cfg_file}: only plain LoRA adapters are supported")
    scaling = float(acfg["lora_alpha"]) / float(acfg["r"])
    modules = dict(model.named_modules())
    merged = 0
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        name = key[: -len(".lora_A.weight")].removeprefix("base_model.model.")
        b = tensors.get(key.replace(".lora_A.", ".lora_B."))
        target = modules.get(name)
        if b is None or not isinstance(target, nn.Linear):
            raise ModelError(f"{weights}: adapter weight {key} does not match the base model")
        with torch.no_grad():
            target.weight += scaling * (b.to(target.weight.dtype) @ a.to(target.weight.dtype))
        merged += 1
    if not merged:
        raise ModelError(f"{weights}: the adapter holds no LoRA weights")
    return merged


def load_context(path: str | os.PathLike, hidden_size: int, context_cfg: dict[str, Any]) -> ContextLayer:
    from safetensors.torch import load_file

    f = Path(path) / "context.safetensors"
    ctx = ContextLayer(hidden_size, **context_cfg)
    try:
        ctx.load_state_dict(load_file(str(f)))
    except Exception as exc:  # safetensors raises its own error type for damaged files
        raise ModelError(f"{f}: unreadable or mismatched context layer ({str(exc).splitlines()[0]})") from None
    return ctx
