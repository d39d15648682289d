"""Evaluate the alliance-marker classifier on the held-out, session-grouped TEST split, through the product.

    python -m evaluation.eval_classifier [--model models/alliance-markers-v1] [--bootstrap 1000]

Each test session is analysed whole by the same pipeline `analyze` runs (diarize, segment, classify;
evaluation/product.py), with the corpus's role labels; a coded record's prediction is that of its
unit, or the maximum over its pieces where segment cut it; markers use the model's own thresholds.

Per label: precision, recall, F1 (at the thresholds chosen on validation), AUPRC, expected calibration
error (10 equal-width bins), Cohen's kappa of the thresholded markers against the release labels
(adjudicated where a session was double-coded, else the primary coder's); macro-F1, macro-AUPRC and
mean ECE. 95% intervals: cluster bootstrap over test sessions (sessions resampled with replacement,
percentile intervals), also for the paired difference in macro-F1 against each baseline. Baselines
(evaluation/baselines.py) are fitted on train and tuned on validation only. Coder-coder agreement
(kappa from data/annotations/manifest.json) is reported next to the model's.
Writes evaluation/results/classifier.json and classifier.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from alliance_nlp.files import write_json_atomic  # noqa: E402
from alliance_nlp.integrity import refresh_manifest_for  # noqa: E402
from alliance_nlp.labels import LABELS  # noqa: E402
from alliance_nlp.stats import cluster_bootstrap_counts, resampled_rows  # noqa: E402
from training.annotations import cohen_kappa  # noqa: E402
from training.classifier import average_precision  # noqa: E402
from training.dataset import build_rows, load_annotations, release_splits  # noqa: E402
from training.thresholds import best_threshold, expected_calibration_error  # noqa: E402

MODEL_NAMES = {
    "classifier": "fine-tuned classifier (ours)",
    "tfidf_logreg": "TF-IDF + logistic regression",
    "zero_shot_similarity": "zero-shot construct similarity (base MiniLM)",
    "previous": "previous model",
}


# ---- metrics ----------------------------------------------------------------------------------
def kappa(a: np.ndarray, b: np.ndarray) -> float:
    k = cohen_kappa(np.asarray(a).tolist(), np.asarray(b).tolist())
    return float("nan") if k is None else k


def label_metrics(y: np.ndarray, p: np.ndarray, t: float) -> dict:
    pred = (p >= t).astype(int)
    tp, fp, fn = (
        int(((pred == 1) & (y == 1)).sum()),
        int(((pred == 1) & (y == 0)).sum()),
        int(((pred == 0) & (y == 1)).sum()),
    )
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    return {
        "precision": prec,
        "recall": rec,
        "f1": f1,
        "auprc": average_precision(y, p),
        "ece": expected_calibration_error(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        "kappa": kappa(y, pred),
        # the best F1 any threshold reaches on these data: how far the validation threshold is off
        "f1_best": best_threshold(y, p)[1],
        "positives": int(y.sum()),
        "predicted": int(pred.sum()),
    }


def all_metrics(Y: np.ndarray, P: np.ndarray, thr: np.ndarray) -> dict:
    per = {l: label_metrics(Y[:, j], P[:, j], thr[j]) for j, l in enumerate(LABELS)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "labels": per,
            "macro_f1": float(np.nanmean([v["f1"] for v in per.values()])),
            "macro_auprc": float(np.nanmean([v["auprc"] for v in per.values()])),
            "mean_ece": float(np.nanmean([v["ece"] for v in per.values()])),
            "mean_brier": float(np.nanmean([v["brier"] for v in per.values()])),
            "mean_kappa": float(np.nanmean([v["kappa"] for v in per.values()])),
        }


SCALARS = ("macro_f1", "macro_auprc", "mean_ece", "mean_brier", "mean_kappa")
PER_LABEL = ("precision", "recall", "f1", "auprc", "ece", "kappa")


def bootstrap(Y, preds: dict, thr: dict, sessions: np.ndarray, B: int, seed: int) -> dict:
    """Cluster bootstrap: resample sessions; percentile 95% intervals for every metric and for the
    paired macro-F1 difference classifier - baseline."""
    uniq = np.unique(sessions)
    members = [np.flatnonzero(sessions == s) for s in uniq]
    draws: dict = {m: {k: [] for k in SCALARS} | {f"{l}.{k}": [] for l in LABELS for k in PER_LABEL} for m in preds}
    diffs = {m: [] for m in preds if m != "classifier"} if "classifier" in preds else {}
    for counts in cluster_bootstrap_counts(len(uniq), B, seed):
        idx = resampled_rows(counts, members)
        res = {m: all_metrics(Y[idx], P[idx], thr[m]) for m, P in preds.items()}
        for m, r in res.items():
            for k in SCALARS:
                draws[m][k].append(r[k])
            for l in LABELS:
                for k in PER_LABEL:
                    draws[m][f"{l}.{k}"].append(r["labels"][l][k])
        for m in diffs:
            diffs[m].append(res["classifier"]["macro_f1"] - res[m]["macro_f1"])

    def ci(v):
        v = np.asarray(v, dtype=float)
        v = v[np.isfinite(v)]
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else [None, None]

    out = {m: {k: ci(v) for k, v in d.items()} for m, d in draws.items()}
    out["macro_f1_difference_vs_classifier"] = {
        m: {"ci95": ci(v), "share_above_zero": float(np.mean(np.asarray(v) > 0))} for m, v in diffs.items() if v
    }
    return out


# ---- run --------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the shipped models/alliance-markers-v1)")
    ap.add_argument(
        "--annotations", help="release JSONL (default: the release the model was trained on, else the current one)"
    )
    ap.add_argument(
        "--previous",
        metavar="DIR",
        help="the previous model folder, run through the same pipeline as one more baseline",
    )
    ap.add_argument(
        "--threshold-rules",
        default=str(ROOT / "evaluation" / "results" / "threshold_transfer.json"),
        help="the threshold-rule study to show in the card (written by evaluation.threshold_transfer)",
    )
    ap.add_argument(
        "--ablations",
        default=str(ROOT / "evaluation" / "results" / "ablations.json"),
        help="ablation results to show in the card (written by training.head_sweep and this command)",
    )
    ap.add_argument(
        "--bench",
        default=str(ROOT / "evaluation" / "results" / "bench_classifier.json"),
        help="speed benchmark (evaluation.bench_classifier --compare) whose cost per 1,000 utterances the card states",
    )
    ap.add_argument(
        "--segment-max-chars",
        type=int,
        help="the unit ablation: segment's max_chars (1 = every sentence its own unit, mapped back to the "
        "coded record by the maximum; a huge value = whole records, truncated by the encoder)",
    )
    ap.add_argument(
        "--no-baselines",
        dest="baselines",
        action="store_false",
        help="skip the TF-IDF and zero-shot baselines (ablation runs; the card needs them)",
    )
    ap.add_argument("--corpus-dir")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "evaluation" / "results" / "classifier"))
    ap.add_argument(
        "--no-card",
        dest="card",
        action="store_false",
        help="do not rewrite the metrics block of the model's README.md (model card)",
    )
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="re-render <out>.md and the card from <out>.json with the current ablation and cost files (no model run)",
    )
    args = ap.parse_args(argv)
    if args.render_only:
        return render_only(args)

    import torch

    from alliance_nlp.classify import default_model_path
    from alliance_nlp.model import read_config
    from evaluation.baselines import TfidfLogReg, ZeroShotSimilarity
    from evaluation.product import split_probabilities, split_rows
    from training.classifier import data_version
    from training.dataset import model_release

    torch.set_num_threads(args.threads)
    t0 = time.time()
    ann = Path(args.annotations) if args.annotations else model_release(read_config(args.model or default_model_path()))
    split = split_rows(ann, args.corpus_dir)
    test = split["test"]
    Y = np.array([r["labels"] for r in test], dtype=int)
    sess_ids = np.array([f"{r['corpus']}/{r['session']}" for r in test])

    model_path = Path(args.model) if args.model else default_model_path()
    config = read_config(model_path)
    trained_on = config.get("training", {}).get("data", {})
    now = data_version(ann)
    if trained_on.get("sha256") and trained_on.get("sha256") != now.get("sha256"):
        # another release: count the test sessions (and groups) the model's own release trained on
        own = model_release(config)
        leaked = None
        if own.is_file() and data_version(own).get("sha256") == trained_on["sha256"]:
            own_rows = build_rows(load_annotations(own), args.corpus_dir, splits=release_splits(own))
            seen = {(r["corpus"], r["group"]) for r in own_rows if r["split"] != "test"}
            leaked = len({(r["corpus"], r["session"]) for r in test if (r["corpus"], r["group"]) in seen})
        if leaked == 0:
            print(
                f"note: the model was trained on release {trained_on.get('release')}; none of this release's "
                "test sessions (or their groups) is in its training or validation data",
                file=sys.stderr,
            )
        else:
            print(
                f"warning: the model was trained on release sha256 {trained_on['sha256'][:12]}, evaluating on "
                f"{now['sha256'][:12]}; "
                + (
                    f"{leaked} test sessions of this release"
                    if leaked
                    else "some test sessions of this release (its release file is not here to check)"
                )
                + " may have been trained on: figures from this run are not held-out",
                file=sys.stderr,
            )
    seg = {"segment": {"max_chars": args.segment_max_chars}} if args.segment_max_chars else None

    def through_product(model: str | None, config: dict | None = None) -> np.ndarray:
        """Per test record, the probabilities the pipeline gives with `model` (cached per model)."""
        return split_probabilities(test, "test", model, args.corpus_dir, config)

    preds = {"classifier": through_product(args.model, seg)}
    thr = {"classifier": np.asarray(config["calibration"]["threshold"], dtype=float)}
    if args.previous:
        preds["previous"] = through_product(args.previous)
        thr["previous"] = np.asarray(read_config(args.previous)["calibration"]["threshold"], dtype=float)
    timings = {"classifier_predict_s": round(time.time() - t0, 1)}

    for B in (TfidfLogReg(), ZeroShotSimilarity()) if args.baselines else ():
        t = time.time()
        B.fit(split["train"], split["validation"])
        preds[B.name] = B.predict_proba(test)
        thr[B.name] = np.asarray(B.thresholds)
        timings[f"{B.name}_s"] = round(time.time() - t, 1)

    point = {m: all_metrics(Y, P, thr[m]) for m, P in preds.items()}
    t = time.time()
    cis = bootstrap(Y, preds, thr, sess_ids, args.bootstrap, args.seed)
    timings["bootstrap_s"] = round(time.time() - t, 1)

    by_corpus = {}
    for corpus in sorted({r["corpus"] for r in test}):
        m = np.array([r["corpus"] == corpus for r in test])
        by_corpus[corpus] = {
            "utterances": int(m.sum()),
            "sessions": int(len(np.unique(sess_ids[m]))),
            **{name: all_metrics(Y[m], P[m], thr[name]) for name, P in preds.items()},
        }
        cb = bootstrap(Y[m], {n: P[m] for n, P in preds.items()}, thr, sess_ids[m], args.bootstrap, args.seed)
        by_corpus[corpus]["ci95"] = {"classifier": cb["classifier"]}
        by_corpus[corpus]["macro_f1_difference"] = cb["macro_f1_difference_vs_classifier"]
    adj = np.array([r.get("coder") == "adjudicated" for r in test])
    adjudicated = None
    if adj.any():
        adjudicated = {
            "utterances": int(adj.sum()),
            "sessions": int(len(np.unique(sess_ids[adj]))),
            "kappa": {
                l: kappa(Y[adj, j], (preds["classifier"][adj, j] >= thr["classifier"][j]).astype(int))
                for j, l in enumerate(LABELS)
            },
        }

    manifest = ann.parent / "manifest.json"  # the release's own coder-coder reliability
    coders = json.loads(manifest.read_text()).get("reliability") if manifest.is_file() else None

    result = {
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": str(model_path),
        "model_config": model_summary(config),
        "data": {
            **now,
            "trained_on": trained_on,
            "test": {
                "utterances": len(test),
                "sessions": int(len(np.unique(sess_ids))),
                "positives": dict(zip(LABELS, map(int, Y.sum(0)))),
            },
        },
        "protocol": {
            "split": "session-grouped held-out test (AnnoMI by video, ESConv by conversation)",
            "path": "whole sessions through Pipeline(diarize, segment, classify); records cut by "
            "segment take the max over their pieces; the model's thresholds",
            "segment": seg["segment"] if seg else "default (records; longer than 500 characters cut at sentences)",
            "thresholds": "per label, max F1 on validation",
            "bootstrap": args.bootstrap,
            "interval": "95% percentile, cluster bootstrap over test sessions",
            "ece": "10 equal-width bins per label",
            "seed": args.seed,
        },
        "results": {
            m: {**point[m], "ci95": cis[m], "thresholds": dict(zip(LABELS, map(float, thr[m])))} for m in preds
        },
        "macro_f1_difference": cis["macro_f1_difference_vs_classifier"],
        "by_corpus": by_corpus,
        "agreement": {
            "coder_coder": coders,
            "model_vs_release_labels_test": {l: point["classifier"]["labels"][l]["kappa"] for l in LABELS},
            "model_vs_adjudicated_test": adjudicated,
        },
        "timings": {**timings, "total_s": round(time.time() - t0, 1)},
    }
    attach_side_results(result, args)
    out = Path(args.out)
    write_json_atomic(out.with_suffix(".json"), _clean(result))
    out.with_suffix(".md").write_text(render_md(_clean(result)), encoding="utf-8")
    print(out.with_suffix(".md").read_text())
    card = Path(args.model or default_model_path()) / "README.md"
    if args.card and card.is_file():
        update_card(card, _clean(result))
        print(f"updated the metrics in {card}", file=sys.stderr)
    return 0


def attach_side_results(result: dict, args) -> None:
    """The ablation and cost results the card shows next to this run's figures."""
    for key, path in (("ablations", args.ablations), ("speed", args.bench), ("threshold_rules", args.threshold_rules)):
        f = Path(path)
        if f.is_file():
            result[key] = json.loads(f.read_text(encoding="utf-8"))
            result[key]["source"] = str(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f)


def render_only(args) -> int:
    from alliance_nlp.classify import default_model_path

    out = Path(args.out)
    result = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    attach_side_results(result, args)
    result = _clean(result)
    write_json_atomic(out.with_suffix(".json"), result)
    out.with_suffix(".md").write_text(render_md(result), encoding="utf-8")
    card = Path(args.model or default_model_path()) / "README.md"
    if args.card and card.is_file():
        update_card(card, result)
        print(f"updated the metrics in {card}", file=sys.stderr)
    return 0


CARD_BEGIN, CARD_END = "<!-- metrics:begin -->", "<!-- metrics:end -->"


def update_card(card: Path, r: dict) -> None:
    """Rewrite the model card's metrics block from this run, so the card never drifts from the results."""
    text = card.read_text(encoding="utf-8")
    if CARD_BEGIN not in text or CARD_END not in text:
        return
    head, rest = text.split(CARD_BEGIN, 1)
    tail = rest.split(CARD_END, 1)[1]
    card.write_text(head + CARD_BEGIN + "\n" + render_card(r) + CARD_END + tail, encoding="utf-8")
    refresh_manifest_for(card)


def render_card(r: dict) -> str:
    """The model card's metrics: summary against baselines, per-label figures, agreement with coders."""
    full = render_md(r).split("\n")
    keep, section = [], "intro"
    for line in full[2:]:
        if line.startswith("## "):
            section = line[3:]
            if section.startswith("Per label") and "ours" not in section:
                section = None
                continue
            line = "#" + line
        if section is not None:
            keep.append(line)
    return "\n".join(keep).strip() + "\n"


def _clean(o):
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return None if not np.isfinite(o) else round(float(o), 4)
    if isinstance(o, np.integer):
        return int(o)
    return o


def _f(x, d=3):
    return "n/a" if x is None else f"{x:.{d}f}"


def _ci(c):
    return "n/a" if not c or c[0] is None else f"[{c[0]:.3f}, {c[1]:.3f}]"


def render_md(r: dict) -> str:
    d = r["data"]
    L = [
        "# Alliance-marker classifier: held-out test evaluation",
        "",
        f"Generated {r['generated']} by `python -m evaluation.eval_classifier`. Model `{r['model_config']['name']}` "
        f"(base {r['model_config']['base_model']['name']}).",
        f"Data: {d.get('release')} (sha256 {str(d.get('sha256'))[:12]}, {d.get('utterances')} utterances); "
        f"test split: {d['test']['utterances']} utterances in {d['test']['sessions']} sessions, never used for "
        f"training, model selection or tuning. Intervals: {r['protocol']['interval']} "
        f"({r['protocol']['bootstrap']} resamples). Thresholds and calibration: fitted on validation.",
        "",
        "## Summary",
        "",
        "| model | macro-F1 [95% CI] | macro-AUPRC [95% CI] | mean ECE [95% CI] | mean Brier | mean kappa |",
        "|---|---|---|---|---|---|",
    ]
    for m, v in r["results"].items():
        L.append(
            f"| {MODEL_NAMES.get(m, m)} | {_f(v['macro_f1'])} {_ci(v['ci95']['macro_f1'])} | "
            f"{_f(v['macro_auprc'])} {_ci(v['ci95']['macro_auprc'])} | {_f(v['mean_ece'])} "
            f"{_ci(v['ci95']['mean_ece'])} | {_f(v['mean_brier'], 4)} | {_f(v['mean_kappa'])} |"
        )
    L += ["", "Paired difference in macro-F1 (classifier minus baseline), same bootstrap resamples:", ""]
    for m, v in r["macro_f1_difference"].items():
        L.append(
            f"- vs {MODEL_NAMES.get(m, m)}: 95% CI {_ci(v['ci95'])}; share of resamples above zero "
            f"{_f(v['share_above_zero'], 3)}"
        )
    for m, v in r["results"].items():
        L += [
            "",
            f"## Per label: {MODEL_NAMES.get(m, m)}",
            "",
            "| label | test positives | precision | recall | F1 [95% CI] | AUPRC [95% CI] | ECE | Brier | kappa | threshold |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for l in LABELS:
            x = v["labels"][l]
            L.append(
                f"| `{l}` | {x['positives']} | {_f(x['precision'])} | {_f(x['recall'])} | {_f(x['f1'])} "
                f"{_ci(v['ci95'][f'{l}.f1'])} | {_f(x['auprc'])} {_ci(v['ci95'][f'{l}.auprc'])} | "
                f"{_f(x['ece'])} | {_f(x['brier'], 4)} | {_f(x['kappa'])} | {_f(v['thresholds'][l])} |"
            )
    others = [m for m in r["results"] if m != "classifier"]
    L += [
        "",
        "## By corpus (test)",
        "",
        "| corpus | utterances | sessions | classifier macro-F1 [95% CI] | classifier macro-AUPRC | "
        + " | ".join(f"{MODEL_NAMES.get(m, m)} macro-F1" for m in others)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(others),
    ]
    for c, v in r["by_corpus"].items():
        L.append(
            f"| {c} | {v['utterances']} | {v['sessions']} | {_f(v['classifier']['macro_f1'])} "
            f"{_ci(v['ci95']['classifier']['macro_f1'])} | {_f(v['classifier']['macro_auprc'])} | "
            + " | ".join(_f(v[m]["macro_f1"]) for m in others)
            + " |"
        )
    L += [
        "",
        "Paired difference in macro-F1 per corpus (classifier minus baseline), cluster bootstrap over that "
        "corpus's test sessions:",
        "",
    ]
    for c, v in r["by_corpus"].items():
        for m, dv in v.get("macro_f1_difference", {}).items():
            L.append(f"- {c}, vs {MODEL_NAMES.get(m, m)}: 95% CI {_ci(dv['ci95'])}")
    ours = r["results"]["classifier"]
    L += [
        "",
        "## Thresholds: do they transfer?",
        "",
        "F1 at the shipped threshold (chosen on validation) against the best F1 any threshold reaches on "
        "the test split (an oracle no user has); the gap is what the validation threshold loses.",
        "",
        "| label | F1 at shipped threshold | best possible F1 on test | gap | ECE |",
        "|---|---|---|---|---|",
    ]
    for l in LABELS:
        x = ours["labels"][l]
        gap = None if x["f1"] is None or x["f1_best"] is None else x["f1_best"] - x["f1"]
        L.append(f"| `{l}` | {_f(x['f1'])} | {_f(x['f1_best'])} | {_f(gap)} | {_f(x['ece'])} |")
    L += render_threshold_rules(r.get("threshold_rules"), r.get("model"))
    L += render_ablations(r.get("ablations"))
    L += render_speed(r.get("speed"))
    a = r["agreement"]
    h = a["coder_coder"]
    L += ["", "## Agreement: model vs coders", ""]
    if h:
        L.append(
            f"Coder-coder (independent AI coding agents, codebook {h.get('codebook', d.get('version'))}): "
            f"{h.get('n_utterances')} utterances "
            f"in {h.get('sessions')} double-coded sessions "
            f"(pooled over {len(h.get('rounds', [])) or 1} double-coding round(s); from "
            "the release's manifest.json). Model: "
            "thresholded markers vs the release labels on the test split"
            + (
                f"; and vs adjudicated labels on the {a['model_vs_adjudicated_test']['utterances']} test "
                "utterances from adjudicated sessions."
                if a["model_vs_adjudicated_test"]
                else " (no adjudicated session fell in the test split)."
            )
        )
    L += [
        "",
        "| label | coder-coder kappa | model vs release labels (test) | model vs adjudicated (test) |",
        "|---|---|---|---|",
    ]
    for l in LABELS:
        hk = h["labels"][l]["kappa"] if h else None
        ak = a["model_vs_adjudicated_test"]["kappa"][l] if a["model_vs_adjudicated_test"] else None
        L.append(f"| `{l}` | {_f(hk, 2)} | {_f(a['model_vs_release_labels_test'][l], 2)} | {_f(ak, 2)} |")
    L.append("")
    return "\n".join(L)


def render_threshold_rules(tr: dict | None, model: str | None) -> list[str]:
    """How the shipped thresholds' rule was chosen (evaluation/results/threshold_transfer.json)."""
    if not tr or (model and tr.get("model") and Path(tr["model"]).name != Path(model).name):
        return []
    h, t, v = tr["validation_halves"], tr["test"], tr["validation"]
    rules = [k for k in h if k != "repeats"]

    def worst(d):
        return max(d[l]["gap"] for l in LABELS)

    L = [
        "",
        f"The thresholds' rule was chosen on validation alone (`python -m evaluation.threshold_transfer`): "
        f"its {v['sessions']} sessions split {h['repeats']} times into random halves, a rule choosing on one "
        "half and scored on the other, on the probabilities the pipeline gives. Held-out-half macro-F1 "
        + ", ".join(f"`{k}` {_f(h[k]['macro_f1'])} (largest gap {_f(worst(h[k]))})" for k in rules)
        + ". For the record, on test (it chose nothing): "
        + ", ".join(f"`{k}` macro-F1 {_f(t[k]['macro_f1'])} (largest gap {_f(worst(t[k]))})" for k in t)
        + ", where `shipped` is the thresholds the model folder held before the rule was applied (those the "
        "training loop set on its own validation predictions).",
    ]
    return L


def model_summary(config: dict) -> dict:
    """What a result records of the model it ran: shape, adaptation, and the training loop's own
    validation figures (on the coded records, not through the pipeline: provenance, not a result)."""
    tr = config.get("training", {})
    val = tr.get("validation", {})
    return {
        **{k: config.get(k) for k in ("name", "base_model", "context", "lora")},
        "finetune": config.get("finetune", "lora"),
        "validation": {k: val.get(k) for k in ("macro_auprc", "macro_f1", "best_epoch")},
        "train_seconds": tr.get("train_seconds"),
    }


def render_ablations(ab: dict | None) -> list[str]:
    """The ablation table (evaluation/results/ablations.json): each row one change, same test split."""
    if not ab:
        return []
    L = ["", "## Ablations", "", ab.get("protocol", ""), ""]
    L += [
        "| setting | what changes | test macro-F1 | best-threshold macro-F1 | macro-AUPRC | "
        + " | ".join(f"`{l}` F1" for l in LABELS)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(LABELS),
    ]
    for row in ab.get("rows", []):
        per = row.get("f1", {})
        L.append(
            f"| {row['name']} | {row.get('what', '')} | {_f(row.get('macro_f1'))}{_seeds(row)} | "
            f"{_f(row.get('macro_f1_oracle'))} | "
            f"{_f(row.get('macro_auprc'))} | " + " | ".join(_f(per.get(l), 2) for l in LABELS) + " |"
        )
    L += [""] + [f"- {n}" for n in ab.get("notes", [])]
    L.append(f"\nSource: `{ab.get('source')}`.")
    return L


def _seeds(row: dict) -> str:
    n = row.get("seeds", 1)
    return "" if n < 2 else f" ± {_f(row.get('macro_f1_sd'))} ({n} seeds)"


def render_speed(sp: dict | None) -> list[str]:
    """Cost per 1,000 utterances of this model and the compared one, measured in one benchmark run."""
    if not sp or "comparison" not in sp:
        return []
    c, m = sp["comparison"], sp.get("machine", {})
    cpu = m.get("cpu_model") or m.get("cpu")
    L = [
        "",
        "## Cost",
        "",
        f"One run of `python -m evaluation.bench_classifier --compare` on {cpu}, {m.get('threads')} threads "
        f"({sp.get('generated')}); per-session calls, batch 64; "
        + (c["method"] + "." if "method" in c else "the two models interleaved."),
        "",
        "| model | utterances / s | wall seconds per 1,000 utterances | CPU-core seconds per 1,000 utterances |",
        "|---|---|---|---|",
    ]
    for k in ("model", "compare"):
        v = c[k]
        L.append(
            f"| `{v['path']}` | {_f(v['utterances_per_s'], 1)} | {_f(v['wall_seconds_per_1000_utterances'], 1)} | "
            f"{_f(v['cpu_seconds_per_1000_utterances'], 1)} |"
        )
    ratio = f"\nThroughput ratio (this model / compared): {_f(c['ratio_model_over_compare'], 2)}"
    if "ratio_per_process" in c:
        ratio += f" (median over processes; per process {', '.join(_f(r, 3) for r in c['ratio_per_process'])})"
    L.append(ratio + ".")
    return L


if __name__ == "__main__":
    raise SystemExit(main())
