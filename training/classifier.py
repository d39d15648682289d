"""Training recipe for the alliance-marker classifier (see alliance_nlp/model.py for the network).

End to end on chunks of consecutive utterances of one session: a step encodes every utterance of its
chunks once (LoRA-adapted encoder, length-sorted micro-batches), runs the context layer over each
chunk and takes BCE with pos_weight on the chunk's own utterances; the `window` utterances before a
chunk are encoded as context only. The best epoch on validation (macro AUPRC) is kept; then per label
the pos_weight prior shift is undone, a temperature is fitted and a max-F1 threshold chosen, all on
validation. The CLI is `python -m training.train_classifier`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit as sigmoid
from torch.nn import functional as F

from alliance_nlp.classify import MarkerClassifier
from alliance_nlp.encoder import encode_batches, load_base
from alliance_nlp.labels import LABELS
from alliance_nlp.model import (
    ARTIFACT_FORMAT,
    ARTIFACT_VERSION,
    NEUTRAL_ROLE,
    ContextLayer,
    pad_sequences,
    role_id,
    tokenize_utterances,
)
from training.thresholds import best_threshold, expected_calibration_error, f1_at, fit_temperature, tune_thresholds


@dataclass
class TrainConfig:
    base_model: str | None = None  # None: the bundled, hash-verified all-MiniLM-L6-v2
    base_sha256: str | None = None  # for another base model: its model.safetensors hash
    max_length: int = 128
    lora: dict[str, Any] = field(
        default_factory=lambda: {
            "r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.1,
            "target_modules": ["query", "key", "value", "dense"],
            "layers_to_transform": [3, 4, 5],
        }
    )
    context: dict[str, Any] = field(
        default_factory=lambda: {
            "dim": 256,
            "layers": 1,
            "heads": 4,
            "ffn": 512,
            "window": 8,
            "lookahead": 0,
            "dropout": 0.2,
        }
    )
    epochs: int = 5
    chunk_utterances: int = 32  # utterances with loss per chunk
    utterances_per_step: int = 96  # loss-bearing utterances per optimiser step
    encode_batch: int = 32  # micro-batch for the encoder inside a step
    finetune: str = "lora"  # "lora", or "full": every weight of lora.target_modules in the encoder layers
    # trained at full rank (biases, LayerNorms and embeddings frozen), saved exactly in the LoRA layout
    lr_encoder: float = 5e-4  # LoRA parameters (or, with finetune: full, the encoder weights)
    lr_context: float = 1e-3  # context layer and head
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    pos_weight: str = "sqrt"  # "sqrt" (sqrt of neg/pos), "full" (neg/pos) or "none"
    pos_weight_max: float = 20.0
    role_dropout: float = 0.05  # share of chunks seen with unknown roles (neutral role)
    aux_weight: float = 0.0  # weight of the corpora's own annotations as auxiliary targets (0: unused)
    aux_groups: list[str] | None = None  # training.auxiliary.GROUPS to use (None: all)
    seed: int = 13
    max_steps: int | None = None  # stop early (smoke tests)
    max_train_sessions: int | None = None  # develop on a subset
    eval_batch: int = 64
    threads: int | None = 2  # torch CPU threads (None: leave as is)
    device: str | None = None  # None: cuda when available, else cpu

    def __post_init__(self) -> None:
        if self.finetune not in ("lora", "full"):
            raise ValueError(f"finetune must be 'lora' or 'full', not {self.finetune!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        base = cls()
        for k in ("lora", "context"):  # nested dicts merge over the defaults
            if k in d:
                d = dict(d, **{k: {**getattr(base, k), **d[k]}})
        return cls(**d)


def load_config(path: str | os.PathLike) -> TrainConfig:
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        d = yaml.safe_load(text) or {}
    else:
        d = json.loads(text)
    return TrainConfig.from_dict(d)


# ---- data -------------------------------------------------------------------------------------
@dataclass
class SessionData:
    key: tuple[str, str]
    split: str
    texts: list[str]
    roles: list[str]
    labels: np.ndarray  # (T, 6)
    aux: np.ndarray | None = None  # (T, auxiliary groups) class index, -1 where absent


def sessions_from_rows(rows: Sequence[dict], aux_table: dict | None = None) -> list[SessionData]:
    """Group dataset rows (training.dataset.build_rows) into sessions in utterance order; with
    `aux_table` (training.auxiliary.read_auxiliary) each session carries its auxiliary targets."""
    from training.auxiliary import aux_targets

    by: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by.setdefault((r["corpus"], r["session"]), []).append(r)
    out = []
    for key, rs in sorted(by.items()):
        rs = sorted(rs, key=lambda r: r["position"])
        splits = {r["split"] for r in rs}
        if len(splits) != 1:
            raise ValueError(f"session {key} spans splits {splits}")
        out.append(
            SessionData(
                key,
                rs[0]["split"],
                [r["text"] for r in rs],
                [r["role"] for r in rs],
                np.array([r["labels"] for r in rs], dtype=np.float32).reshape(-1, len(LABELS)),
                aux_targets([(key[0], key[1], int(r.get("utterance", r["position"]))) for r in rs], aux_table)
                if aux_table is not None
                else None,
            )
        )
    return out


def make_chunks(lengths: Sequence[int], chunk: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """(session index, start, end) loss spans covering every utterance once; a random first cut per
    session and epoch, so chunk boundaries move between epochs."""
    spans = []
    for s, n in enumerate(lengths):
        cut = rng.randrange(chunk) if n > chunk else 0
        bounds = sorted({0, n, *range(cut, n, chunk)})
        spans += [(s, a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    return spans


def pack_steps(spans: Sequence[tuple[int, int, int]], per_step: int) -> list[list[tuple[int, int, int]]]:
    """Greedy packing of chunk spans into training steps of at most `per_step` loss-bearing utterances
    (a longer chunk gets a step of its own)."""
    steps: list[list[tuple[int, int, int]]] = []
    n = 0
    for sp in spans:
        size = sp[2] - sp[1]
        if not steps or n + size > per_step:
            steps.append([])
            n = 0
        steps[-1].append(sp)
        n += size
    return steps


def steps_per_epoch(lengths: Sequence[int], cfg: TrainConfig) -> int:
    """Steps one epoch will take, counted by packing a draw of chunks as training does (with its own
    random stream, so training's stream is untouched). Chunks seldom fill a step exactly, so this is
    about 14% more than utterances / utterances_per_step, which the schedule used to assume."""
    rng = random.Random(cfg.seed)
    spans = make_chunks(lengths, cfg.chunk_utterances, rng)
    rng.shuffle(spans)
    return len(pack_steps(spans, cfg.utterances_per_step))


def pos_weights(Y: np.ndarray, mode: str, cap: float) -> np.ndarray:
    pos = Y.sum(0)
    neg = len(Y) - pos
    ratio = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
    w = {"sqrt": np.sqrt(ratio), "full": ratio, "none": np.ones_like(ratio)}[mode]
    return np.clip(w, 1.0, cap)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---- metrics used for model selection ----------------------------------------------------------
def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def split_summary(Y: np.ndarray, Z: np.ndarray) -> dict[str, Any]:
    aps = [average_precision(Y[:, j], Z[:, j]) for j in range(len(LABELS))]
    f1s = [best_threshold(Y[:, j], sigmoid(Z[:, j]))[1] for j in range(len(LABELS))]
    q = np.clip(sigmoid(Z), 1e-7, 1 - 1e-7)
    return {
        "loss": float(-np.mean(Y * np.log(q) + (1 - Y) * np.log(1 - q))),
        "macro_auprc": float(np.nanmean(aps)),
        "macro_f1_oracle": float(np.mean(f1s)),
        "auprc": dict(zip(LABELS, map(float, aps))),
    }


# ---- training ---------------------------------------------------------------------------------
def data_version(path: str | os.PathLike | None) -> dict[str, Any]:
    """Identify the annotation release a model was trained on (name, version, SHA-256, size)."""
    if path is None or not Path(path).is_file():
        return {"release": None}
    import re

    from training.annotations import VERSION

    p = Path(path)
    h = hashlib.sha256(p.read_bytes()).hexdigest()
    n = sum(1 for line in p.open(encoding="utf-8") if line.strip())
    m = re.search(r"\.v(\d+(?:\.\d+)*)\.jsonl$", p.name)
    return {"release": p.name, "version": m.group(1) if m else VERSION, "sha256": h, "utterances": n}


def train(
    cfg: TrainConfig,
    rows: Sequence[dict],
    output: str | os.PathLike | None = None,
    log: Callable[[dict], None] | None = None,
    data_info: dict | None = None,
    aux_table: dict | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every_s: float = 600.0,
) -> MarkerClassifier:
    """Train, select the best epoch, calibrate on validation; save to `output` when given.

    With `cfg.aux_weight` > 0 the corpora's own annotations are auxiliary targets: `aux_table`
    ((corpus, session, utterance) -> (group, class)), read from the corpus folder when not given.

    With `checkpoint`, the whole training state (trainable weights, optimiser, schedule, random
    streams, the epoch's step plan, the best epoch so far) is written there every
    `checkpoint_every_s` seconds and after each epoch, and a run that finds the file resumes from it
    and ends with the same weights as an uninterrupted run: an hours-long CPU run (a larger encoder)
    survives a stop. The file is removed when training ends."""
    from peft import LoraConfig, get_peft_model

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    log = log or (lambda rec: None)
    t0 = time.time()

    from training.auxiliary import GROUPS, N_AUX, read_auxiliary

    aux_groups = list(cfg.aux_groups or GROUPS)
    if cfg.aux_weight and aux_table is None:
        aux_table = read_auxiliary()
    sessions = sessions_from_rows(rows, aux_table if cfg.aux_weight else None)
    train_s = [s for s in sessions if s.split == "train"]
    val_s = [s for s in sessions if s.split == "validation"]
    if cfg.max_train_sessions:
        train_s = random.Random(cfg.seed).sample(train_s, min(cfg.max_train_sessions, len(train_s)))
    if not train_s or not val_s:
        raise ValueError(f"need train and validation sessions (got {len(train_s)} / {len(val_s)})")

    base = load_base(cfg.base_model, sha256=cfg.base_sha256)
    tok = base.tokenizer
    base_weights: dict[str, torch.Tensor] = {}
    if cfg.finetune == "full":
        encoder = base.model.to(device)
        for prm in encoder.parameters():
            prm.requires_grad_(False)
        for name, mod in full_rank_targets(encoder, cfg.lora["target_modules"]).items():
            mod.weight.requires_grad_(True)
            base_weights[name] = mod.weight.detach().clone()
    else:
        lcfg = LoraConfig(**cfg.lora)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            encoder = get_peft_model(base.model, lcfg).to(device)
    trained = {k for k, v in encoder.named_parameters() if v.requires_grad}
    context = ContextLayer(base.hidden_size, **cfg.context).to(device)
    # auxiliary targets read the same contextual vectors as the marker head; that head is not saved
    aux_params = []
    if cfg.aux_weight:
        aux_head = torch.nn.Linear(int(cfg.context.get("dim", 256)), N_AUX).to(device)
        aux_params = list(aux_head.parameters())
    window = int(cfg.context.get("window", 8))
    lookahead = int(cfg.context.get("lookahead", 0))

    # pre-tokenize each utterance with its role prefix and with none (role dropout)
    ids_role = [tokenize_utterances(tok, s.texts, s.roles, cfg.max_length) for s in train_s]
    ids_none = [tokenize_utterances(tok, s.texts, [None] * len(s.texts), cfg.max_length) for s in train_s]
    Ytr = np.concatenate([s.labels for s in train_s])
    pw = pos_weights(Ytr, cfg.pos_weight, cfg.pos_weight_max)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(pw, dtype=torch.float32, device=device), reduction="sum"
    )

    enc_params = [p for p in encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [
            {"params": enc_params, "lr": cfg.lr_encoder},
            {"params": list(context.parameters()) + aux_params, "lr": cfg.lr_context},
        ],
        weight_decay=cfg.weight_decay,
    )
    rng = random.Random(cfg.seed)
    n_epoch = steps_per_epoch([len(s.texts) for s in train_s], cfg)
    total = cfg.epochs * n_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * n_epoch)
    warm = max(1, int(cfg.warmup_fraction * total))
    # linear warm-up, then linear decay to zero
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))
    )

    calib_stub = {
        "logit_offset": [0.0] * len(LABELS),
        "temperature": [1.0] * len(LABELS),
        "threshold": [0.5] * len(LABELS),
    }
    run_cfg = {
        "max_length": cfg.max_length,
        "context": cfg.context,
        "calibration": calib_stub,
        "base_model": {"name": base.info["name"], "sha256": base.info["sha256"]},
    }
    predictor = MarkerClassifier(encoder, tok, context, run_cfg, device, cfg.eval_batch)

    def predict(split_sessions):
        z = predictor.logits([(s.texts, s.roles) for s in split_sessions])
        return np.concatenate(z), np.concatenate([s.labels for s in split_sessions])

    log(
        {
            "event": "start",
            "train_sessions": len(train_s),
            "train_utterances": int(len(Ytr)),
            "validation_sessions": len(val_s),
            "validation_utterances": int(sum(len(s.texts) for s in val_s)),
            "steps_per_epoch": n_epoch,
            "total_steps": total,
            "pos_weight": dict(zip(LABELS, pw.tolist())),
            "trainable_parameters": int(
                sum(p.numel() for p in enc_params) + sum(p.numel() for p in context.parameters())
            ),
            "device": str(device),
            "threads": torch.get_num_threads(),
        }
    )
    best, best_score, step = None, -np.inf, 0
    start_epoch, plan, first, run_loss, run_n = 1, None, 0, 0.0, 0
    aux_module = aux_head if cfg.aux_weight else None
    state = read_checkpoint(checkpoint, cfg) if checkpoint else None
    if state is not None:
        encoder.load_state_dict(state["encoder"], strict=False)
        context.load_state_dict(state["context"])
        if aux_module is not None:
            aux_module.load_state_dict(state["aux_head"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, best_score, best = state["step"], state["best_score"], state["best"]
        start_epoch, plan, first = state["epoch"], state["plan"], state["next_step_in_epoch"]
        run_loss, run_n = state["run_loss"], state["run_n"]
        rng.setstate(state["rng"])
        np.random.set_state(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        t0 = time.time() - state["elapsed_s"]
        log({"event": "resumed", "path": str(checkpoint), "epoch": start_epoch, "step": step})
    last_save = time.time()

    def save_state(epoch: int, plan: list | None, next_step: int) -> None:
        write_checkpoint(
            checkpoint,
            {
                "config": asdict(cfg),
                "encoder": {k: v.detach().cpu() for k, v in encoder.named_parameters() if k in trained},
                "context": context.state_dict(),
                "aux_head": aux_module.state_dict() if aux_module is not None else None,
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "step": step,
                "best_score": best_score,
                "best": best,
                "epoch": epoch,
                "plan": plan,
                "next_step_in_epoch": next_step,
                "run_loss": run_loss,
                "run_n": run_n,
                "rng": rng.getstate(),
                "numpy_rng": np.random.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "elapsed_s": time.time() - t0,
            },
        )

    for epoch in range(start_epoch, cfg.epochs + 1):
        encoder.train()
        context.train()
        if plan is None:  # the epoch's step plan (resuming mid-epoch: the saved one)
            spans = make_chunks([len(s.texts) for s in train_s], cfg.chunk_utterances, rng)
            rng.shuffle(spans)
            plan, first, run_loss, run_n = pack_steps(spans, cfg.utterances_per_step), 0, 0.0, 0
        te = time.time()
        for k in range(first, len(plan)):
            group = plan[k]
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            n_loss = sum(b - a for _, a, b in group)
            flat, seqs = [], []  # token ids to encode; per chunk (offset, n, roles, loss from, labels)
            for s, a, b in group:
                lo, hi = max(0, a - window), min(len(train_s[s].texts), b + lookahead)
                neutral = rng.random() < cfg.role_dropout
                src = ids_none[s] if neutral else ids_role[s]
                roles = [NEUTRAL_ROLE if neutral else role_id(r) for r in train_s[s].roles[lo:hi]]
                aux = train_s[s].aux[a:b] if train_s[s].aux is not None else None
                seqs.append((len(flat), hi - lo, roles, a - lo, b - lo, train_s[s].labels[a:b], aux))
                flat.extend(src[lo:hi])
            vec = encode_batches(encoder, tok, flat, cfg.encode_batch, device)
            x, r, pad = pad_sequences([vec[o : o + n] for o, n, *_ in seqs], [q[2] for q in seqs], device)
            feats = context.features(x, r, pad)
            logits = context.head(feats)
            loss = 0.0
            for b_i, (_, _, _, la, lb, lab, _) in enumerate(seqs):
                loss = loss + loss_fn(logits[b_i, la:lb], torch.as_tensor(lab, device=device))
            loss = loss / (n_loss * len(LABELS))
            if cfg.aux_weight:
                loss = loss + cfg.aux_weight * aux_loss(aux_head(feats), seqs, aux_groups, device)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params + list(context.parameters()) + aux_params, 1.0)
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item() * n_loss
            run_n += n_loss
            if checkpoint and time.time() - last_save >= checkpoint_every_s:
                save_state(epoch, plan, k + 1)
                last_save = time.time()
            if step % 10 == 0:
                log(
                    {
                        "event": "step",
                        "epoch": epoch,
                        "step": step,
                        "loss": run_loss / run_n,
                        "elapsed_s": round(time.time() - t0, 1),
                    }
                )
        Zv, Yv = predict(val_s)
        summ = split_summary(Yv, Zv)
        rec = {
            "event": "epoch",
            "epoch": epoch,
            "step": step,
            "train_loss": run_loss / max(run_n, 1),
            "epoch_s": round(time.time() - te, 1),
            "elapsed_s": round(time.time() - t0, 1),
            **{f"val_{k}": v for k, v in summ.items()},
        }
        log(rec)
        if summ["macro_auprc"] > best_score or best is None:
            best_score = summ["macro_auprc"]
            best = (
                epoch,
                {k: v.detach().clone() for k, v in encoder.named_parameters() if k in trained},
                copy.deepcopy(context.state_dict()),
            )
        plan = None
        if checkpoint:
            save_state(epoch + 1, None, 0)
            last_save = time.time()
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break

    epoch_best, lora_state, ctx_state = best
    encoder.load_state_dict(lora_state, strict=False)
    context.load_state_dict(ctx_state)
    Zv, Yv = predict(val_s)
    calibration = fit_calibration(Yv, Zv, pw, np.array([f"{s.key[0]}/{s.key[1]}" for s in val_s for _ in s.texts]))
    Pv = sigmoid((Zv - calibration["logit_offset"]) / np.array(calibration["temperature"]))
    val_metrics = {
        "best_epoch": epoch_best,
        "macro_auprc": best_score,
        "f1": {l: f1_at(Yv[:, j], Pv[:, j], calibration["threshold"][j]) for j, l in enumerate(LABELS)},
        "ece": {l: expected_calibration_error(Yv[:, j], Pv[:, j]) for j, l in enumerate(LABELS)},
    }
    val_metrics["macro_f1"] = float(np.mean(list(val_metrics["f1"].values())))
    log({"event": "calibrated", **val_metrics, "calibration": calibration, "elapsed_s": round(time.time() - t0, 1)})

    counts = {
        sp: {
            "sessions": sum(s.split == sp for s in sessions),
            "utterances": int(sum(len(s.texts) for s in sessions if s.split == sp)),
        }
        for sp in ("train", "validation", "test")
    }
    config = {
        "name": Path(output).name if output else "alliance-markers",
        "base_model": {
            "name": base.info["name"],
            "sha256": base.info["sha256"],
            "pooling": "mean",
            "hidden_size": base.hidden_size,
        },
        "max_length": cfg.max_length,
        "role_prefix": True,
        "context": cfg.context,
        "lora": {k: v for k, v in cfg.lora.items()}
        if cfg.finetune == "lora"
        else {"target_modules": list(cfg.lora["target_modules"]), "layers_to_transform": None, "full_rank": True},
        **({"finetune": "full"} if cfg.finetune == "full" else {}),
        "calibration": {
            **calibration,
            "method": "p = sigmoid((logit - logit_offset) / temperature); "
            "logit_offset = log(pos_weight) undoes the weighted-loss prior shift; "
            "temperature (NLL) fitted on validation; threshold: the median over 100 resamples of "
            "validation sessions of the max-F1 cut",
        },
        "training": {
            "data": {**(data_info or {}), "splits": counts},
            "config": asdict(cfg),
            "pos_weight": pw.tolist(),
            "validation": val_metrics,
            "train_seconds": round(time.time() - t0, 1),
            "device": str(device),
            "torch": torch.__version__,
        },
    }
    predictor = MarkerClassifier(encoder, tok, context, {**run_cfg, **config}, device, cfg.eval_batch)
    if output:
        save_artifact(output, encoder, context, config, base_weights or None)
        log({"event": "saved", "path": str(output), "elapsed_s": round(time.time() - t0, 1)})
    if checkpoint:
        Path(checkpoint).unlink(missing_ok=True)
    return predictor


def write_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically: a stop while writing leaves the previous checkpoint whole."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike, cfg: TrainConfig) -> dict[str, Any] | None:
    """The saved training state, or None when there is none; refuses one from another recipe."""
    path = Path(path)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file, written by train()
    theirs, ours = state.get("config", {}), asdict(cfg)
    differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if differ:
        raise ValueError(
            f"{path}: checkpoint of another training config (differs in {', '.join(differ)}); remove it to start afresh"
        )
    return state


def aux_loss(za: torch.Tensor, seqs: list, groups: Sequence[str], device: Any) -> torch.Tensor:
    """Mean cross-entropy of the auxiliary `groups` over the chunks' loss-bearing utterances that carry one.

    seqs: the training step's chunks, (..., loss from, loss to, labels, auxiliary targets) tuples."""
    from training.auxiliary import GROUPS, OFFSETS

    names = list(GROUPS)
    total, n = za.new_zeros(()), 0
    for b_i, (_, _, _, la, lb, _, aux) in enumerate(seqs):
        if aux is None:
            continue
        for g in groups:
            tgt = torch.as_tensor(aux[:, names.index(g)], device=device)
            m = tgt >= 0
            if bool(m.any()):
                o, k = OFFSETS[g], len(GROUPS[g])
                total = total + F.cross_entropy(za[b_i, la:lb][m, o : o + k], tgt[m], reduction="sum")
                n += int(m.sum())
    return total / max(n, 1)


def fit_calibration(
    Y: np.ndarray, Z: np.ndarray, pw: np.ndarray, groups: np.ndarray | None = None
) -> dict[str, list[float]]:
    """Per label: offset log(pos_weight), temperature on the offset logits, and a threshold: with the
    utterances' sessions `groups`, the median max-F1 cut over session resamples (it transfers to unseen
    sessions better: evaluation/threshold_transfer.py); without, the max-F1 cut."""
    offset = np.log(pw)
    temps = [fit_temperature(Y[:, j], Z[:, j] - offset[j]) for j in range(Y.shape[1])]
    P = sigmoid((Z - offset) / np.array(temps))
    thr = tune_thresholds(Y, P, groups)
    return {"logit_offset": offset.tolist(), "temperature": temps, "threshold": thr.tolist()}


def full_rank_targets(encoder: torch.nn.Module, target_modules: Sequence[str]) -> dict[str, torch.nn.Linear]:
    """The Linear layers of the encoder's transformer layers whose last name part is in `target_modules`
    (the pooler, unused by mean pooling, is left out)."""
    return {
        name: mod
        for name, mod in encoder.named_modules()
        if isinstance(mod, torch.nn.Linear) and ".layer." in f".{name}" and name.rsplit(".", 1)[-1] in target_modules
    }


def full_rank_adapter(encoder: torch.nn.Module, base_weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The fine-tuned weights' changes D = W - W0 written exactly as LoRA factors B @ A of rank
    min(out, in): A = I, B = D when in <= out, else A = D, B = I. The runtime merges them as it merges
    any adapter, so a fully fine-tuned model needs no other artifact format."""
    out: dict[str, torch.Tensor] = {}
    mods = dict(encoder.named_modules())
    for name, w0 in base_weights.items():
        d = (mods[name].weight.detach() - w0).float().cpu()
        n_out, n_in = d.shape
        if n_in <= n_out:
            a, b = torch.eye(n_in), d
        else:
            a, b = d, torch.eye(n_out)
        out[f"base_model.model.{name}.lora_A.weight"] = a.contiguous()
        out[f"base_model.model.{name}.lora_B.weight"] = b.contiguous()
    return out


def save_artifact(
    path: str | os.PathLike,
    encoder: Any,
    context: Any,
    config: dict[str, Any],
    base_weights: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write adapter/ (peft LoRA layout), context.safetensors and config.json; never the base weights.
    With `base_weights` (full fine-tuning) the adapter holds the exact full-rank changes."""
    from safetensors.torch import save_file

    from alliance_nlp.integrity import write_manifest

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ac = path / "adapter" / "adapter_config.json"
    if base_weights:
        ranks = {min(w.shape) for w in base_weights.values()}
        if len(ranks) != 1:
            raise ValueError("full fine-tuning export needs one rank min(out, in) for every target module")
        rank = ranks.pop()
        (path / "adapter").mkdir(exist_ok=True)
        save_file(full_rank_adapter(encoder, base_weights), str(path / "adapter" / "adapter_model.safetensors"))
        acfg = {
            "peft_type": "LORA",
            "r": rank,
            "lora_alpha": rank,  # scaling 1: B @ A is the change itself
            "lora_dropout": 0.0,
            "target_modules": sorted({n.rsplit(".", 1)[-1] for n in base_weights}),
            "bias": "none",
            "use_dora": False,
            "use_rslora": False,
            "fan_in_fan_out": False,
            "task_type": None,
        }
    else:
        encoder.save_pretrained(str(path / "adapter"))
        (path / "adapter" / "README.md").unlink(missing_ok=True)  # peft's placeholder card; ours is ../README.md
        acfg = json.loads(ac.read_text())
    acfg["base_model_name_or_path"] = config["base_model"]["name"]  # not a local site-packages path
    ac.write_text(json.dumps(acfg, indent=1) + "\n")
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in context.state_dict().items()}, str(path / "context.safetensors")
    )
    cfg = dict(config, format=ARTIFACT_FORMAT, format_version=ARTIFACT_VERSION, labels=list(LABELS))
    (path / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    write_manifest(path)
