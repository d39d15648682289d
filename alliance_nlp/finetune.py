"""`alliance-nlp finetune`: continue training a marker classifier on reviewers' corrections.

    alliance-nlp finetune --corrections RESULTS/corrections.jsonl -o my-model [--model BASE]

What it does, with plain torch (no peft, nothing from training/):

1. Reads the corrections (each reviewer's latest label set per utterance; `alliance_nlp.review.store`)
   and the analysed sessions they refer to (the session.json files beside each corrections file, or
   `--results`). Several reviewers of one utterance give a soft target (the share who chose a label).
2. Splits the corrected sessions into a training part and a held-out part, by whole session (seeded),
   so the before/after figures come from sessions the new model never saw.
3. Encodes every utterance of those sessions once with the base model's encoder (its LoRA adapter
   merged, frozen) and runs the base context layer over each whole session (the uncorrected utterances
   are context). Then, by default (`--train head`), refits the head of the context layer, label by label
   (its six outputs are separate logistic regressions): weighted BCE with the base model's pos_weight
   plus a pull towards the base head, by L-BFGS. Each label's pull, or keeping the base head's row, is
   chosen by session-grouped cross-validation inside the training part (out-of-fold log-loss, the
   one-standard-error rule: the strongest pull not clearly worse than the best), so a few hundred
   corrections adjust the model only as far as they reliably improve it. `--train context` instead
   trains the whole context layer and head with AdamW, each step pulled back towards the base weights.
4. Refits calibration on out-of-fold logits of the training part: per label a temperature (NLL,
   scipy.optimize) and a max-F1 threshold (sklearn precision_recall_curve), each kept from the base
   model unless its refit beats the base across the folds by more than the standard error between
   sessions. A label with too few positives keeps the base model's temperature and threshold.
5. Scores the base model and the new one on the held-out corrections (each at its own thresholds), and
   writes a model folder that `analyze --model` reads: adapter/ copied unchanged, a new
   context.safetensors, config.json (calibration, what it was tuned on, the figures) and a README.md card.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from . import __version__
from .classify import MarkerClassifier
from .encoder import encode_batches
from .errors import InputError, UsageError
from .integrity import write_manifest
from .labels import LABELS
from .model import ContextLayer, pad_sequences, read_config, role_id, tokenize_utterances
from .review.data import load_entries
from .review.store import model_fingerprint, read_corrections
from .session import Session
from .stats import cluster_bootstrap_counts, percentile_interval


@dataclass
class FinetuneConfig:
    holdout: float = 0.25  # share of corrected utterances held out (whole sessions); 0: none
    scope: str = "head"  # "head": refit the head; "context": train the whole context layer and head
    priors: tuple[float, ...] = (3000.0, 1000.0, 300.0, 100.0, 30.0)  # scope head: pulls towards the base head
    epochs: int = 3  # scope context: passes over the training part
    lr: float = 3e-4  # scope context: AdamW learning rate
    anchor: float = 10.0  # scope context: pull towards the base weights (decoupled, per step)
    batch_sessions: int = 8
    folds: int = 4  # session-grouped folds of the training part (prior choice, calibration)
    min_positives: int = 5  # fewer positives (or negatives) in training: keep the base calibration
    seed: int = 13
    threads: int | None = None
    bootstrap: int = 1000  # resamples of held-out sessions for the difference's interval


@dataclass
class Item:
    """One corrected session: encoder vectors of all its utterances, roles, and targets where corrected."""

    id: str
    vec: torch.Tensor  # (T, D)
    roles: list[int]
    index: np.ndarray  # corrected utterance positions
    target: np.ndarray  # (len(index), 6) soft targets (share of reviewers)
    reviewers: set[str] = field(default_factory=set)


def load_base_classifier(path: str | os.PathLike | None = None) -> MarkerClassifier:
    """The base model on the torch runtime at full precision (fine-tuning needs its torch modules)."""
    import inspect

    params = inspect.signature(MarkerClassifier.load).parameters
    kw: dict[str, Any] = {"backend": "torch"} if "backend" in params else {}
    if "precision" in params:
        kw["precision"] = "fp32"
    return MarkerClassifier.load(path, **kw)


def _check_torch(clf: MarkerClassifier) -> None:
    if (
        getattr(clf, "backend", "torch") != "torch"
        or not isinstance(clf.context, ContextLayer)
        or getattr(clf, "precision", "fp32") != "fp32"
    ):
        raise UsageError(
            "fine-tuning needs the base model on the torch runtime at fp32 "
            "(load it with alliance_nlp.finetune.load_base_classifier)"
        )


# ---- data -------------------------------------------------------------------------------------
def collect(
    corrections: Sequence[str | os.PathLike],
    results: Sequence[str | os.PathLike] | None = None,
    reviewers: Sequence[str] | None = None,
) -> tuple[dict[str, Session], dict[str, dict[int, dict[str, list[str]]]], dict[str, Any]]:
    """(sessions by id, session -> utterance -> reviewer -> labels, what was read and skipped)."""
    if not corrections:
        raise UsageError("give at least one corrections file (--corrections RESULTS/corrections.jsonl)")
    latest, info = read_corrections(corrections, reviewers)
    folders = [Path(r) for r in results] if results else sorted({Path(c).resolve().parent for c in corrections})
    sessions: dict[str, Session] = {}
    for folder in folders:
        for sid, e in load_entries(folder)[0].items():
            sessions.setdefault(sid, e.session)
    skipped: dict[str, int] = {}
    labels: dict[str, dict[int, dict[str, list[str]]]] = {}
    for (rev, sid, utt), rec in sorted(latest.items()):
        s = sessions.get(sid)
        why = None
        if s is None:
            why = "session not found among the analysed sessions"
        elif utt >= len(s.utterances):
            why = "utterance index beyond the session"
        elif rec.get("source") is not None and s.utterances[utt].source != rec.get("source"):
            why = "the session was re-analysed since (utterance no longer comes from the same input record)"
        if why:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        labels.setdefault(sid, {}).setdefault(utt, {})[rev] = list(rec["labels"])
    info["skipped"] = skipped
    info["used"] = sum(len(v) for v in labels.values())
    if not labels:
        raise InputError(
            corrections[0],
            "no usable corrections"
            + (f" ({'; '.join(f'{n} {w}' for w, n in skipped.items())})" if skipped else "")
            + ("" if info["records"] else " (the file holds none)"),
        )
    return sessions, labels, info


def split_sessions(sizes: Mapping[str, int], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """Whole sessions to (train, held out): shuffled with `seed`, held-out sessions taken until they hold
    `holdout` of the corrected utterances; at least one session on each side when there are two."""
    ids = sorted(sizes)
    if holdout <= 0 or len(ids) < 2:
        return ids, []
    random.Random(seed).shuffle(ids)
    total = sum(sizes.values())
    held: list[str] = []
    for sid in ids:
        if len(held) >= len(ids) - 1 or sum(sizes[h] for h in held) >= holdout * total:
            break
        held.append(sid)
    return [s for s in ids if s not in held], held


def encode_sessions(clf: MarkerClassifier, sessions: Sequence[Session]) -> list[torch.Tensor]:
    """The base encoder's vectors for every utterance of each session (encoded in shared batches)."""
    texts: list[str] = []
    roles: list[str] = []
    sizes: list[int] = []
    for s in sessions:
        t, r = MarkerClassifier.session_inputs(s)
        texts += t
        roles += r
        sizes.append(len(t))
    with torch.no_grad():
        ids = tokenize_utterances(clf.tokenizer, texts, roles, clf.max_length)
        vec = encode_batches(clf.encoder, clf.tokenizer, ids, clf.batch_size, clf.device, out_dtype=torch.float32)
    out, pos = [], 0
    for n in sizes:
        out.append(vec[pos : pos + n].detach().clone())
        pos += n
    return out


# ---- training ---------------------------------------------------------------------------------
def predict(ctx: ContextLayer, items: Sequence[Item], device: Any) -> list[np.ndarray]:
    """Raw logits at the corrected positions of each item."""
    ctx.eval()
    out = []
    with torch.no_grad():
        for it in items:
            x, r, pad = pad_sequences([it.vec.to(device)], [it.roles], device)
            z = ctx(x, r, pad)[0].float().cpu().numpy()
            out.append(z[it.index])
    return out


def train_context(
    base: ContextLayer, items: Sequence[Item], pos_weight: np.ndarray, cfg: FinetuneConfig, device: Any, seed: int
) -> ContextLayer:
    """Scope "context": a copy of `base` (context layer and head) trained on the items' corrected utterances
    with AdamW; after each step every weight moves back towards the base model's by lr * anchor of the gap."""
    torch.manual_seed(seed)
    ctx = copy.deepcopy(base).to(device)
    ctx.train()
    ref = [p.detach().clone() for p in ctx.parameters()]
    opt = torch.optim.AdamW(ctx.parameters(), lr=cfg.lr, weight_decay=0.0)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(pos_weight, dtype=torch.float32, device=device), reduction="sum"
    )
    rng = random.Random(seed)
    order = list(range(len(items)))
    for _epoch in range(cfg.epochs):
        rng.shuffle(order)
        for b in range(0, len(order), cfg.batch_sessions):
            batch = [items[k] for k in order[b : b + cfg.batch_sessions]]
            x, r, pad = pad_sequences([it.vec.to(device) for it in batch], [it.roles for it in batch], device)
            logits = ctx(x, r, pad)
            n = sum(len(it.index) for it in batch)
            loss = sum(
                loss_fn(
                    logits[k, torch.as_tensor(it.index, device=device)],
                    torch.as_tensor(it.target, dtype=torch.float32, device=device),
                )
                for k, it in enumerate(batch)
            ) / (n * len(LABELS))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            torch.nn.utils.clip_grad_norm_(ctx.parameters(), 1.0)
            opt.step()
            if cfg.anchor:
                with torch.no_grad():
                    for p, q in zip(ctx.parameters(), ref):
                        p.sub_(cfg.lr * cfg.anchor * (p - q))
    ctx.eval()
    return ctx


def head_inputs(ctx: ContextLayer, items: Sequence[Item], device: Any) -> list[np.ndarray]:
    """What the head reads (the context layer's normalised output) at the corrected positions of each item."""
    ctx.eval()
    out = []
    with torch.no_grad():
        for it in items:
            x, r, pad = pad_sequences([it.vec.to(device)], [it.roles], device)
            h = ctx.inp(x) + ctx.role(r)
            for n, blk in enumerate(ctx.blocks):
                h = blk(h, ctx.attention_bias(h.shape[1], pad, n, h.device).to(h.dtype))
            out.append(ctx.norm(h)[0].double().cpu().numpy()[it.index])
    return out


def fit_head(
    X: np.ndarray, Y: np.ndarray, W0: np.ndarray, b0: np.ndarray, pos_weight: np.ndarray, prior: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scope "head": the head refitted by L-BFGS: weighted BCE against the (soft) targets plus
    prior * ||(W, b) - (W0, b0)||^2 / n, so `prior` is worth that many utterances' evidence for the base head."""
    W = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
    W0t, b0t = torch.tensor(W0, dtype=torch.float64), torch.tensor(b0, dtype=torch.float64)
    Xt, Yt = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, dtype=torch.float64))
    opt = torch.optim.LBFGS([W, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(Xt @ W.T + b, Yt) + prior * (((W - W0t) ** 2).sum() + ((b - b0t) ** 2).sum()) / len(X)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    return W.detach().numpy(), b.detach().numpy()


def log_loss(Y: np.ndarray, Z: np.ndarray, offset: np.ndarray) -> float:
    """Mean binary log-loss of sigmoid(Z - offset) against (soft) targets: how well logits rank and fit."""
    q = np.clip(expit(Z - offset), 1e-7, 1 - 1e-7)
    return float(-np.mean(Y * np.log(q) + (1 - Y) * np.log(1 - q)))


# ---- calibration ------------------------------------------------------------------------------
def fit_temperature(y: np.ndarray, z: np.ndarray) -> float:
    """T > 0 minimising the NLL of sigmoid(z / T) against (soft) targets y (bounded scalar search on log T)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        q = np.clip(expit(z / math.exp(log_t)), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    res = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(res.x))


def max_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold that maximises F1 (sklearn precision_recall_curve), halfway to the next lower score."""
    from sklearn.metrics import precision_recall_curve

    prec, rec, thr = precision_recall_curve(y, p)
    f1 = np.where(prec[:-1] + rec[:-1] > 0, 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12), 0.0)
    k = int(np.argmax(f1))
    below = thr[k - 1] if k > 0 else thr[k] - 1e-3
    return float(max((thr[k] + below) / 2, 1e-4))


def clearly_better(gain: np.ndarray, weight: np.ndarray) -> bool:
    """Is a per-session gain (one value per session, weighted by its utterances) larger than its standard
    error? The one-standard-error rule: a change has to beat the noise between sessions to be taken."""
    g, w = np.asarray(gain, dtype=float), np.asarray(weight, dtype=float)
    if len(g) < 2 or w.sum() <= 0:
        return False
    w = w / w.sum()
    mean = float((w * g).sum())
    se = math.sqrt(float((w**2 * (g - mean) ** 2).sum()) * len(g) / (len(g) - 1))
    return mean > se


def _per_session_loss(y: np.ndarray, z: np.ndarray, sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.clip(expit(z), 1e-7, 1 - 1e-7)
    loss = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    ids = np.unique(sessions)
    return np.array([loss[sessions == k].mean() for k in ids]), np.array([(sessions == k).sum() for k in ids])


def _nll(y: np.ndarray, z: np.ndarray, t: float) -> float:
    q = np.clip(expit(z / t), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def _f1_clearly_better(
    y: np.ndarray, pred: np.ndarray, base_pred: np.ndarray, sessions: np.ndarray, seed: int, n_boot: int = 200
) -> bool:
    """Is F1(pred) - F1(base_pred) larger than its bootstrap standard error (sessions resampled)?"""
    ids = np.unique(sessions)
    if len(ids) < 2:
        return False
    # per session: tp, fp, fn of both, so a resample is a matrix product
    cnt = np.array(
        [
            [
                int((q & y)[sessions == k].sum()),
                int((q & (1 - y))[sessions == k].sum()),
                int(((1 - q) & y)[sessions == k].sum()),
            ]
            for q in (pred, base_pred)
            for k in ids
        ]
    ).reshape(2, len(ids), 3)

    def f1(c: np.ndarray) -> np.ndarray:
        den = 2 * c[..., 0] + c[..., 1] + c[..., 2]
        return np.where(den > 0, 2 * c[..., 0] / np.maximum(den, 1), 0.0)

    full = f1(cnt.sum(1))
    counts = cluster_bootstrap_counts(len(ids), n_boot, seed)
    draws = f1(np.einsum("bs,msk->bmk", counts, cnt))
    gain = draws[:, 0] - draws[:, 1]
    return bool(full[0] - full[1] > gain.std(ddof=1))


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp, fp, fn = int((pred & y).sum()), int((pred & (1 - y)).sum()), int(((1 - pred) & y).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def fit_calibration(
    Y: np.ndarray,
    Z: np.ndarray,
    base_cal: Mapping[str, Any],
    min_positives: int,
    folds: np.ndarray | None = None,
    sessions: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Per label, a temperature and a threshold for the logits Z of the training part (out-of-fold logits
    where `folds` gives each row's fold).

    With folds, each refit must earn its place: a temperature refitted on the other folds must give each fold
    a lower log-loss than the base model's, and a max-F1 threshold refitted on the other folds a higher F1
    than the base model's cut, by more than the standard error between sessions (`sessions` gives each
    row's session; F1's from a bootstrap over sessions); otherwise the base model's is kept (the base
    threshold moved with the temperature so the same logits still cross it). Without folds both are
    refitted in-sample. A label with
    fewer than `min_positives` positives (or negatives) keeps the base calibration. Returns (calibration,
    what happened per label)."""
    offset = np.asarray(base_cal["logit_offset"], dtype=float)
    temps = [float(t) for t in base_cal["temperature"]]
    thr = [float(t) for t in base_cal["threshold"]]
    how = {}
    yb = (Y >= 0.5).astype(int)
    ids = np.unique(folds) if folds is not None else np.zeros(0)
    for j, lab in enumerate(LABELS):
        pos = int(yb[:, j].sum())
        if pos < min_positives or len(yb) - pos < min_positives:
            how[lab] = f"base model's (only {pos} positive(s) in the training part)"
            continue
        z, y, t0 = Z[:, j] - offset[j], Y[:, j], temps[j]
        cut = t0 * math.log(thr[j] / (1 - thr[j]))  # the base model's cut, in offset logits
        if len(ids) < 2:
            temps[j] = fit_temperature(y, z)
            thr[j] = max_f1_threshold(yb[:, j], expit(z / temps[j]))
            how[lab] = f"refitted in-sample ({pos} positives)"
            continue
        assert folds is not None
        sess = sessions if sessions is not None else folds
        z_cv = np.zeros_like(z)
        for f in ids:
            z_cv[folds == f] = z[folds == f] / fit_temperature(y[folds != f], z[folds != f])
        l_cv, n_s = _per_session_loss(y, z_cv, sess)
        l_base, _ = _per_session_loss(y, z / t0, sess)
        refit_t = clearly_better(l_base - l_cv, n_s)
        t = fit_temperature(y, z) if refit_t else t0
        p = expit(z / t)
        pred = np.zeros(len(y), dtype=int)
        for f in ids:
            tf = max_f1_threshold(yb[folds != f, j], p[folds != f]) if yb[folds != f, j].any() else 0.5
            pred[folds == f] = p[folds == f] >= tf
        base_thr = float(expit(cut / t))
        base_pred = (p >= base_thr).astype(int)
        cv_f1, base_f1 = _f1(yb[:, j], pred), _f1(yb[:, j], base_pred)
        refit_thr = _f1_clearly_better(yb[:, j], pred, base_pred, sess, seed)
        temps[j] = t
        thr[j] = max_f1_threshold(yb[:, j], p) if refit_thr else base_thr
        how[lab] = (
            f"{pos} positives; temperature {'refitted' if refit_t else 'kept'} (cross-validated log-loss "
            f"{float(np.average(l_cv, weights=n_s)):.4f} vs base {float(np.average(l_base, weights=n_s)):.4f}); "
            f"threshold {'refitted' if refit_thr else 'kept'} (cross-validated F1 {cv_f1:.3f} vs base cut "
            f"{base_f1:.3f})"
        )
    cal = {"logit_offset": offset.tolist(), "temperature": temps, "threshold": thr}
    return cal, how


def calibrate(Z: np.ndarray, cal: Mapping[str, Any]) -> np.ndarray:
    return expit((Z - np.asarray(cal["logit_offset"])) / np.asarray(cal["temperature"]))


# ---- figures ----------------------------------------------------------------------------------
def scores(Y: np.ndarray, P: np.ndarray, thresholds: Sequence[float]) -> dict[str, Any]:
    """Per label precision, recall, F1, AUPRC and kappa at the thresholds; macro-F1 (labels with any
    positive or prediction), micro-F1, macro-AUPRC and the share of utterances whose whole label set is
    right (the ones a reviewer would not have to correct)."""
    import warnings

    from sklearn.metrics import average_precision_score, cohen_kappa_score

    yb = (Y >= 0.5).astype(int)
    pred = (P >= np.asarray(thresholds)).astype(int)
    per: dict[str, Any] = {}
    for j, lab in enumerate(LABELS):
        y, q = yb[:, j], pred[:, j]
        tp, fp, fn = int((q & y).sum()), int((q & (1 - y)).sum()), int(((1 - q) & y).sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            kappa = float(cohen_kappa_score(y, q)) if len(set(y) | set(q)) > 1 else None
        per[lab] = {
            "positives": int(y.sum()),
            "predicted": int(q.sum()),
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
            "auprc": float(average_precision_score(y, P[:, j])) if 0 < y.sum() < len(y) else None,
            "kappa": None if kappa is None or kappa != kappa else kappa,
        }
    f1s = [v["f1"] for v in per.values() if v["f1"] is not None]
    aps = [v["auprc"] for v in per.values() if v["auprc"] is not None]
    tp, fp, fn = int((pred & yb).sum()), int((pred & (1 - yb)).sum()), int(((1 - pred) & yb).sum())
    return {
        "utterances": int(len(Y)),
        "labels": per,
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "micro_f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
        "macro_auprc": float(np.mean(aps)) if aps else None,
        "exact_match": float(np.mean((pred == yb).all(1))) if len(Y) else None,
    }


def _average_precision(y: np.ndarray, p: np.ndarray) -> float | None:
    """Average precision as sklearn's average_precision_score computes it (ties grouped), in numpy."""
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        return None
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # end of each run of tied scores
    tp = np.cumsum(ys)[last]
    fp = (last + 1) - tp
    prec = tp / (tp + fp)
    rec = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, rec]) * prec))


def summary_scores(Y: np.ndarray, P: np.ndarray, thresholds: Sequence[float]) -> dict[str, float | None]:
    """The summary figures of `scores` (macro-F1, micro-F1, macro-AUPRC, exact match), numpy only."""
    yb = (Y >= 0.5).astype(int)
    pred = (P >= np.asarray(thresholds)).astype(int)
    tp, fp, fn = (pred & yb).sum(0), (pred & (1 - yb)).sum(0), ((1 - pred) & yb).sum(0)
    den = 2 * tp + fp + fn
    f1s = [2 * a / d for a, d in zip(tp, den) if d]
    aps = [a for a in (_average_precision(yb[:, j], P[:, j]) for j in range(Y.shape[1])) if a is not None]
    micro = int(den.sum())
    return {
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "micro_f1": 2 * int(tp.sum()) / micro if micro else None,
        "macro_auprc": float(np.mean(aps)) if aps else None,
        "exact_match": float(np.mean((pred == yb).all(1))) if len(Y) else None,
    }


def paired_difference(
    groups: np.ndarray,
    Y: np.ndarray,
    P0: np.ndarray,
    t0: Sequence[float],
    P1: np.ndarray,
    t1: Sequence[float],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """After minus before, with percentile 95% intervals from a bootstrap over held-out sessions."""
    g = np.asarray(groups)
    members = [np.flatnonzero(g == k) for k in np.unique(g)]
    keys = ("macro_f1", "micro_f1", "macro_auprc", "exact_match")
    draws: dict[str, list[float]] = {k: [] for k in keys}
    if len(members) >= 2 and n_boot > 0:
        for counts in cluster_bootstrap_counts(len(members), n_boot, seed):
            idx = np.concatenate([np.tile(m, c) for m, c in zip(members, counts) if c])
            a, b = summary_scores(Y[idx], P0[idx], t0), summary_scores(Y[idx], P1[idx], t1)
            for k in keys:
                x, y = a[k], b[k]
                if x is not None and y is not None:
                    draws[k].append(y - x)
    before, after = summary_scores(Y, P0, t0), summary_scores(Y, P1, t1)
    out = {}
    for k in keys:
        lo, hi = percentile_interval(np.asarray(draws[k])) if draws[k] else (None, None)
        x, y = before[k], after[k]
        est = None if x is None or y is None else y - x
        out[k] = {
            "difference": est,
            "ci95": [lo, hi],
            "share_above_zero": float(np.mean(np.asarray(draws[k]) > 0)) if draws[k] else None,
        }
    return out


# ---- the two scopes ---------------------------------------------------------------------------
TRAINED = {
    "head": "the head of the context layer, refitted towards the base head with the pull chosen by session-grouped "
    "cross-validation on the training part (the encoder's LoRA adapter and the context layer's transformer "
    "are the base model's, unchanged)",
    "context": "the context layer and head (the encoder's LoRA adapter is the base model's, unchanged)",
}


def _fit_head_scope(
    base_ctx: ContextLayer,
    train: Sequence[Item],
    fold_of: Sequence[int],
    folds: int,
    pw: np.ndarray,
    offset: np.ndarray,
    cfg: FinetuneConfig,
    device: Any,
    log: Callable[[str], None],
) -> tuple[ContextLayer, np.ndarray, dict[str, Any]]:
    """Refit the head, label by label (its six outputs are separate logistic regressions): each label's pull
    towards the base head, or keeping the base head's row, chosen by that label's out-of-fold log-loss."""
    W0 = base_ctx.head.weight.detach().double().cpu().numpy()
    b0 = base_ctx.head.bias.detach().double().cpu().numpy()
    X = head_inputs(base_ctx, train, device)
    Xall, Yall = np.concatenate(X), np.concatenate([it.target for it in train])
    if folds < 2:
        prior = max(cfg.priors)  # no cross-validation: the strongest pull
        log(f"refitting the head (too few sessions to cross-validate; pull {prior:g})")
        W, b = fit_head(Xall, Yall, W0, b0, pw, prior)
        return (
            _with_head(base_ctx, W, b),
            Xall @ W.T + b,
            {"cross_validated": False, "labels": {lab: prior for lab in LABELS}, "kept_base_head": False},
        )
    candidates: list[float | None] = [None, *sorted(cfg.priors, reverse=True)]  # None: the base head's row
    log(
        f"refitting the head: choosing each label's pull towards the base head by {folds}-fold cross-validation "
        f"over {len(train)} session(s)"
    )
    oof = {c: np.zeros_like(Yall, dtype=float) for c in candidates}
    pos = np.cumsum([0] + [len(it.index) for it in train])
    for f in range(folds):
        fit = [k for k, fk in enumerate(fold_of) if fk != f]
        rest = [k for k, fk in enumerate(fold_of) if fk == f]
        Xf, Yf = np.concatenate([X[k] for k in fit]), np.concatenate([train[k].target for k in fit])
        for c in candidates:
            W, b = (W0, b0) if c is None else fit_head(Xf, Yf, W0, b0, pw, c)
            for k in rest:
                oof[c][pos[k] : pos[k + 1]] = X[k] @ W.T + b
    losses = {c: [log_loss(Yall[:, j], oof[c][:, j], offset[j]) for j in range(len(LABELS))] for c in candidates}
    rows = np.concatenate([[k] * len(it.index) for k, it in enumerate(train)])
    best: dict[str, float | None] = {}
    for j, lab in enumerate(LABELS):
        per = {c: _per_session_loss(Yall[:, j], oof[c][:, j] - offset[j], rows) for c in candidates}
        lowest = min(candidates, key=lambda c: losses[c][j])  # noqa: B023
        # one-standard-error rule: the strongest pull (the base row first) not clearly worse than the lowest
        best[lab] = next(
            c for c in candidates if c == lowest or not clearly_better(per[c][0] - per[lowest][0], per[c][1])
        )
    W, b, Zoof = W0.copy(), b0.copy(), oof[None].copy()
    fits: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for j, lab in enumerate(LABELS):
        c = best[lab]
        if c is None:
            continue
        if c not in fits:
            fits[c] = fit_head(Xall, Yall, W0, b0, pw, c)
        W[j], b[j] = fits[c][0][j], fits[c][1][j]
        Zoof[:, j] = oof[c][:, j]
    table = {
        lab: {("base" if c is None else f"{c:g}"): round(losses[c][j], 5) for c in candidates}
        for j, lab in enumerate(LABELS)
    }
    log("pull per label: " + ", ".join(f"{lab} {'base' if c is None else f'{c:g}'}" for lab, c in best.items()))
    return (
        _with_head(base_ctx, W, b),
        Zoof,
        {
            "cross_validated": True,
            "labels": best,
            "out_of_fold_log_loss": table,
            "kept_base_head": all(c is None for c in best.values()),
        },
    )


def _with_head(base_ctx: ContextLayer, W: np.ndarray, b: np.ndarray) -> ContextLayer:
    ctx = copy.deepcopy(base_ctx)
    with torch.no_grad():
        ctx.head.weight.copy_(torch.as_tensor(W, dtype=ctx.head.weight.dtype))
        ctx.head.bias.copy_(torch.as_tensor(b, dtype=ctx.head.bias.dtype))
    return ctx.eval()


def _fit_context_scope(
    base_ctx: ContextLayer,
    train: Sequence[Item],
    fold_of: Sequence[int],
    folds: int,
    pw: np.ndarray,
    cfg: FinetuneConfig,
    device: Any,
    log: Callable[[str], None],
) -> tuple[ContextLayer, np.ndarray]:
    """Train the context layer and head; calibration data from cross-fitted models where there are folds."""
    Zoof = [np.zeros_like(it.target, dtype=float) for it in train]
    if folds >= 2:
        log(f"cross-fitting {folds} models for calibration")
        for f in range(folds):
            fit = [it for it, k in zip(train, fold_of) if k != f]
            ctx_f = train_context(base_ctx, fit, pw, cfg, device, cfg.seed + 100 + f)
            rest = [k for k, fk in enumerate(fold_of) if fk == f]
            for k, z in zip(rest, predict(ctx_f, [train[k] for k in rest], device)):
                Zoof[k] = z
    log(f"training the context layer and head ({cfg.epochs} epochs over {len(train)} session(s))")
    ctx = train_context(base_ctx, train, pw, cfg, device, cfg.seed)
    if folds < 2:
        Zoof = predict(ctx, train, device)
    return ctx, np.concatenate(Zoof)


# ---- the command ------------------------------------------------------------------------------
def finetune(
    corrections: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    base: str | os.PathLike | None = None,
    results: Sequence[str | os.PathLike] | None = None,
    reviewers: Sequence[str] | None = None,
    config: FinetuneConfig | None = None,
    name: str | None = None,
    classifier: MarkerClassifier | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    vector_cache: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Fine-tune on corrections and write the model folder `output`; returns the report (also in
    config.json under "finetune"). `classifier`: an already loaded base model (else loaded from `base`);
    `vector_cache`: session id -> encoder vectors, shared between runs over the same sessions and base."""
    cfg = config or FinetuneConfig()
    log = log or (lambda msg: None)
    t0 = time.time()
    if not 0 <= cfg.holdout < 1:
        raise UsageError(f"--holdout {cfg.holdout}: must be at least 0 and below 1")
    if cfg.epochs < 1:
        raise UsageError(f"--epochs {cfg.epochs}: must be at least 1")
    if cfg.scope not in ("head", "context"):
        raise UsageError(f"--train {cfg.scope!r}: choose head or context")
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UsageError(f"{out}: exists and is not empty (choose another folder, or --force to replace it)")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    sessions, labels, info = collect(corrections, results, reviewers)
    sizes = {sid: len(u) for sid, u in labels.items()}
    train_ids, held_ids = split_sessions(sizes, cfg.holdout, cfg.seed)
    if cfg.holdout > 0 and not held_ids:
        log("only one corrected session: no held-out part, so no before/after figures")
    log(
        f"{info['used']} corrected utterances in {len(sizes)} session(s): {len(train_ids)} for training, "
        f"{len(held_ids)} held out"
    )

    clf = classifier or load_base_classifier(base)
    _check_torch(clf)
    base_path = Path(clf.path) if clf.path else None
    base_cfg = dict(clf.config)
    device = clf.device
    pw = np.asarray((base_cfg.get("training") or {}).get("pos_weight") or np.exp(clf.offset), dtype=float)

    order = train_ids + held_ids
    cache = vector_cache if vector_cache is not None else {}
    todo = [s for s in order if s not in cache or len(cache[s]) != len(sessions[s].utterances)]
    if todo:
        log(
            f"encoding the {sum(len(sessions[s].utterances) for s in todo)} utterances of those sessions with the "
            "base encoder"
        )
        cache.update(zip(todo, encode_sessions(clf, [sessions[s] for s in todo])))
    items: dict[str, Item] = {}
    for sid in order:
        vec = cache[sid]
        s = sessions[sid]
        by_utt = labels[sid]
        idx = np.array(sorted(by_utt), dtype=int)
        tgt = np.array(
            [[np.mean([lab in v for v in by_utt[i].values()]) for lab in LABELS] for i in idx], dtype=np.float32
        )
        items[sid] = Item(
            sid,
            vec,
            [role_id(s.role_of(u.speaker)) for u in s.utterances],
            idx,
            tgt,
            {r for v in by_utt.values() for r in v},
        )
    train = [items[s] for s in train_ids]
    held = [items[s] for s in held_ids]
    Ytr = np.concatenate([it.target for it in train])
    base_ctx = clf.context

    offset = np.asarray(base_cfg["calibration"]["logit_offset"], dtype=float)
    folds = min(cfg.folds, len(train))
    fold_of = [k % folds for k in range(len(train))] if folds >= 2 else [0] * len(train)
    random.Random(cfg.seed + 1).shuffle(fold_of)
    chosen: dict[str, Any] = {}
    if cfg.scope == "head":
        ctx, Zcal, chosen = _fit_head_scope(base_ctx, train, fold_of, folds, pw, offset, cfg, device, log)
    else:
        ctx, Zcal = _fit_context_scope(base_ctx, train, fold_of, folds, pw, cfg, device, log)
    cal_source = (
        f"out-of-fold logits ({folds} session-grouped folds of the training part)"
        if folds >= 2
        else "in-sample logits of the training part (too few sessions to cross-fit)"
    )
    row_fold = np.concatenate([[f] * len(it.index) for f, it in zip(fold_of, train)]) if folds >= 2 else None
    row_session = np.concatenate([[k] * len(it.index) for k, it in enumerate(train)])
    calibration, how = fit_calibration(
        Ytr, Zcal, base_cfg["calibration"], cfg.min_positives, row_fold, row_session, cfg.seed
    )
    calibration["method"] = (
        "p = sigmoid((logit - logit_offset) / temperature); logit_offset = log(pos_weight) of the base model "
        f"(kept: fine-tuning uses the same pos_weight); temperature (NLL) and threshold (max F1) fitted on {cal_source}, "
        "each kept from the base model unless its refit did better across the folds"
    )

    figures: dict[str, Any] = {"held_out": None}
    if held:
        Y = np.concatenate([it.target for it in held])
        groups = np.concatenate([[k] * len(it.index) for k, it in enumerate(held)])
        P0 = calibrate(np.concatenate(predict(base_ctx, held, device)), base_cfg["calibration"])
        P1 = calibrate(np.concatenate(predict(ctx, held, device)), calibration)
        thr0, thr1 = base_cfg["calibration"]["threshold"], calibration["threshold"]
        figures["held_out"] = {
            "sessions": len(held),
            "utterances": int(len(Y)),
            "before": scores(Y, P0, thr0),
            "after": scores(Y, P1, thr1),
            "difference": paired_difference(groups, Y, P0, thr0, P1, thr1, cfg.bootstrap, cfg.seed),
        }
    Ptr = calibrate(np.concatenate(predict(ctx, train, device)), calibration)
    figures["training_part_in_sample"] = {
        k: v for k, v in scores(Ytr, Ptr, calibration["threshold"]).items() if k != "labels"
    }

    base_name = str(base_cfg.get("name") or "model")
    new_name = name or f"{base_name}-ft-{time.strftime('%Y%m%d')}"
    report: dict[str, Any] = {
        "base_model": {
            "name": base_name,
            "path": str(base_path) if base_path else None,
            "fingerprint": model_fingerprint(base_path) if base_path else None,
        },
        "corrections": {
            "files": [
                {"name": Path(f["path"]).name, "sha256": f["sha256"], "lines": f["lines"], "damaged": f["damaged"]}
                for f in info["files"]
            ],
            "used": info["used"],
            "skipped": info["skipped"],
            "reviewers": sorted({r for it in items.values() for r in it.reviewers}),
            "label_positives": {
                lab: int((np.concatenate([it.target for it in items.values()])[:, j] >= 0.5).sum())
                for j, lab in enumerate(LABELS)
            },
        },
        "split": {
            "seed": cfg.seed,
            "holdout": cfg.holdout,
            "train": {"sessions": train_ids, "utterances": int(sum(len(it.index) for it in train))},
            "held_out": {"sessions": held_ids, "utterances": int(sum(len(it.index) for it in held))},
        },
        "trained": TRAINED[cfg.scope],
        "prior_choice": chosen or None,
        "config": asdict(cfg),
        "calibration_fit": how,
        "figures": figures,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - t0, 1),
        "alliance_nlp": __version__,
        "torch": torch.__version__,
    }
    new_cfg = {**base_cfg, "name": new_name, "calibration": calibration, "finetune": report}
    write_model(out, base_path, ctx, new_cfg, force=force)
    report["output"] = str(out)
    report["fingerprint"] = model_fingerprint(out)
    log(f"wrote {out} in {time.time() - t0:.0f} s")
    return report


def write_model(
    out: Path, base_path: Path | None, ctx: ContextLayer, config: dict[str, Any], force: bool = False
) -> None:
    """Write the model folder atomically (a temporary folder beside it, renamed into place)."""
    from safetensors.torch import save_file

    if base_path is None or not (base_path / "adapter").is_dir():
        raise InputError(base_path, "the base model folder has no adapter/ to copy")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(base_path / "adapter", tmp / "adapter", ignore=shutil.ignore_patterns("README.md"))
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in ctx.state_dict().items()}, str(tmp / "context.safetensors")
        )
        (tmp / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(render_card(config), encoding="utf-8")
        write_manifest(tmp)
        read_config(tmp)  # what analyze --model will check
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        elif out.exists():
            if not force:
                raise UsageError(f"{out}: exists and is not empty (use --force to replace it)")
            if out.is_dir():
                shutil.rmtree(out)
            else:
                out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---- model card -------------------------------------------------------------------------------
def _n(x: Any, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


def _trained_text(r: Mapping[str, Any]) -> str:
    c = r["config"]
    if c["scope"] == "head":
        ch = r.get("prior_choice") or {}
        per = ", ".join(
            f"`{lab}` {'kept' if v is None else f'pull {v:g}'}" for lab, v in (ch.get("labels") or {}).items()
        )
        if ch.get("kept_base_head"):
            how = (
                "cross-validation preferred the base head for every label, so the head is unchanged and only the "
                "calibration below can differ"
            )
        elif ch.get("cross_validated"):
            how = (
                f"per label, the base row or a pull among {', '.join(f'{x:g}' for x in c['priors'])}: the strongest "
                "whose out-of-fold log-loss (session-grouped folds) is within one standard error of the lowest: "
                f"{per}"
            )
        else:
            how = f"{per} (too few sessions to cross-validate: the strongest pull)"
        return (
            f"{r['trained']}. Weighted BCE with the base model's pos_weight plus a pull of the head's weights "
            f"towards the base head (L-BFGS); {how}."
        )
    return (
        f"{r['trained']}; {c['epochs']} epochs, AdamW (lr {c['lr']}), weighted BCE with the base model's "
        f"pos_weight, each weight pulled back towards the base model's after every step (anchor {c['anchor']})."
    )


def render_card(config: Mapping[str, Any]) -> str:
    """The README.md of a fine-tuned model folder, from its config.json."""
    r = config["finetune"]
    b, c, sp, fig = r["base_model"], r["corrections"], r["split"], r["figures"]
    lines = [
        f"# Model card: {config['name']}",
        "",
        f"A fine-tuned copy of **{b['name']}** (fingerprint `{b['fingerprint']}`), made by `alliance-nlp finetune` "
        f"(alliance-nlp {r['alliance_nlp']}) on {r['time']}. Use it with `alliance-nlp analyze --model <this folder>`.",
        "",
        "It inherits everything the base model's card says about its data, licence terms (the base model is "
        "trained on ESConv, CC BY-NC 4.0: non-commercial use only) and limits; read that card first. Only "
        "the differences are described here.",
        "",
        "## What was tuned, on what",
        "",
        "- **Trained**: " + _trained_text(r),
        f"- **Corrections**: {c['used']} corrected utterances in {len(sp['train']['sessions']) + len(sp['held_out']['sessions'])} "
        f"session(s), by {len(c['reviewers'])} reviewer(s) ({', '.join(c['reviewers'])}); several reviewers of one "
        "utterance give a soft target (the share who chose the label).",
        "- **Files**: "
        + "; ".join(f"`{f['name']}` ({f['lines']} lines, sha256 `{f['sha256'][:12]}…`)" for f in c["files"]),
    ]
    if c["skipped"]:
        lines.append("- **Left out**: " + "; ".join(f"{n} ({w})" for w, n in c["skipped"].items()))
    lines += [
        "- **Positives per label** (all corrections): "
        + ", ".join(f"`{lab}` {c['label_positives'][lab]}" for lab in LABELS),
        f"- **Split** (whole sessions, seed {sp['seed']}): training part {len(sp['train']['sessions'])} session(s), "
        f"{sp['train']['utterances']} utterances; held out {len(sp['held_out']['sessions'])} session(s), "
        f"{sp['held_out']['utterances']} utterances. Held-out sessions: "
        + (", ".join(f"`{s}`" for s in sp["held_out"]["sessions"]) or "none")
        + ".",
        "- **Calibration**: "
        + config["calibration"]["method"]
        + ". Per label: "
        + "; ".join(f"`{lab}` {how}" for lab, how in r["calibration_fit"].items())
        + ".",
        "",
        "## Before and after, on the held-out corrections",
        "",
    ]
    h = fig.get("held_out")
    if not h:
        lines += [
            "No held-out part (fewer than two corrected sessions, or `--holdout 0`), so there are no "
            "before/after figures: nothing here shows that this model is better than its base.",
            "",
        ]
    else:
        d = h["difference"]

        def row(name: str, key: str) -> str:
            ci = d[key]["ci95"]
            interval = f" [{_n(ci[0])}, {_n(ci[1])}]" if ci[0] is not None else " (no interval: one held-out session)"
            return f"| {name} | {_n(h['before'][key])} | {_n(h['after'][key])} | {_n(d[key]['difference'])}{interval} |"

        lines += [
            f"{h['utterances']} corrected utterances in {h['sessions']} session(s) that the fine-tuning never saw; "
            "each model at its own thresholds. Interval: 95% percentile, bootstrap over held-out sessions "
            f"({r['config']['bootstrap']} resamples). With few held-out sessions the figures are rough.",
            "",
            "| figure | base model | fine-tuned | difference [95% CI] |",
            "|---|---|---|---|",
            row("macro-F1", "macro_f1"),
            row("micro-F1", "micro_f1"),
            row("macro-AUPRC", "macro_auprc"),
            row("utterances needing no correction", "exact_match"),
            "",
            "| label | held-out positives | F1 before | F1 after | AUPRC before | AUPRC after |",
            "|---|---|---|---|---|---|",
        ]
        for lab in LABELS:
            a, bb = h["before"]["labels"][lab], h["after"]["labels"][lab]
            lines.append(
                f"| `{lab}` | {a['positives']} | {_n(a['f1'])} | {_n(bb['f1'])} | {_n(a['auprc'])} | "
                f"{_n(bb['auprc'])} |"
            )
        lines.append("")
    tis = fig.get("training_part_in_sample") or {}
    lines += [
        f"For reference, on its own training part (in-sample, optimistic): macro-F1 {_n(tis.get('macro_f1'))}, "
        f"micro-F1 {_n(tis.get('micro_f1'))}.",
        "",
        "## Limits",
        "",
        "- Tuned on a small number of corrected utterances from the sessions listed above: it is adapted to "
        "those reviewers' reading of the codebook and to those sessions' setting, and can be worse elsewhere.",
        "- Held-out figures from a handful of sessions are noisy; rare labels may have no held-out positive at all.",
        "- Corrections say what reviewers decided, not what is true; check reviewer agreement "
        "(`alliance-nlp review-agreement`) before trusting either.",
        "",
        "## Files",
        "",
        "`adapter/` (the base model's LoRA adapter, unchanged), `context.safetensors` (the fine-tuned context "
        "layer and head), `config.json` (calibration, and under `finetune` everything above), this card.",
        "",
    ]
    return "\n".join(lines)
