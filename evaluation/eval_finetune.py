"""Does `alliance-nlp finetune` turn reviewers' corrections into a better model? Measured with realistic
corrections made from our own annotation release.

    python -m evaluation.eval_finetune [--scenarios mi-practice same-mix train-split] [--repeats 8]

Each scenario is a set of corpus sessions from the release (session-grouped splits of training/dataset.py):

- `mi-practice` (the main result): the AnnoMI sessions of the validation and test splits (17, one per
  video), i.e. a trainer in a motivational-interviewing programme correcting MI sessions the shipped model
  never trained on; MI counselling is the smaller of the two corpora the model learned from, and its
  weaker domain.
- `same-mix`: 24 sessions of the test split, ESConv and AnnoMI in proportion, i.e. corrections on the same
  kind of sessions the model was trained on (the control: little to learn).
- `train-split`: 24 sessions of the train split, as the issue suggested; the shipped model was trained on
  exactly these labels, so "before" is optimistic and there is nothing new to learn.

For each scenario:
1. the sessions are analysed with the product (diarize, segment, classify, aggregate; evaluation/product.py)
   and written as `analyze` writes them (outputs.write_outputs) into a temporary results folder: the corpus
   text never enters the repository;
2. the release's labels become corrections.jsonl lines in the format the review app writes
   (`review.store.make_record`; reviewer `release-v1.1`): an analysed utterance gets the labels of the coded
   record it comes from (`source`), as if a reviewer had corrected every utterance;
3. `finetune` (the command's own code, default settings) runs `--repeats` times with different seeds, each
   holding out other whole sessions (`--holdout` of the corrected utterances), and its own before/after
   figures on the held-out corrections are collected (base model vs fine-tuned, each at its own thresholds).

Writes evaluation/results/finetune.json (ids, counts and figures only; no text).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from alliance_nlp.classify import default_model_path  # noqa: E402
from alliance_nlp.files import write_json_atomic  # noqa: E402
from alliance_nlp.finetune import FinetuneConfig, finetune  # noqa: E402
from alliance_nlp.labels import LABELS as LABEL_ORDER  # noqa: E402
from alliance_nlp.outputs import write_outputs  # noqa: E402
from alliance_nlp.review.store import CORRECTIONS_FILE, CorrectionStore, make_record, model_fingerprint  # noqa: E402
from evaluation.product import build_pipeline, run_pipeline  # noqa: E402
from training.annotations import RELEASE_NAME  # noqa: E402
from training.annotations import ROOT as ANN_ROOT  # noqa: E402
from training.corpora import read_corpus  # noqa: E402
from training.dataset import build_rows, load_annotations, release_splits  # noqa: E402

REVIEWER = "release-v1.1"
FIGURES = ("macro_f1", "micro_f1", "macro_auprc", "exact_match")


SCENARIOS = {
    "mi-practice": "AnnoMI sessions of the validation and test splits (never trained on)",
    "same-mix": "sessions of the test split, ESConv and AnnoMI in proportion (never trained on)",
    "train-split": "sessions of the train split (the shipped model was trained on their labels)",
}


def pick_sessions(
    rows: list[dict], split: str | tuple[str, ...], n: int, seed: int, corpora: tuple[str, ...] | None = None
) -> list[tuple[str, str]]:
    """n (corpus, session) keys of the split(s), one per group, corpora in proportion to their sessions."""
    splits = (split,) if isinstance(split, str) else split
    by_corpus: dict[str, dict[str, str]] = defaultdict(dict)  # corpus -> group -> session
    for r in sorted(rows, key=lambda r: (r["corpus"], r["session"])):
        if r["split"] in splits and (corpora is None or r["corpus"] in corpora):
            by_corpus[r["corpus"]].setdefault(r["group"], r["session"])
    total = sum(len(g) for g in by_corpus.values())
    rng = random.Random(seed)
    picked: list[tuple[str, str]] = []
    for corpus in sorted(by_corpus):
        groups = sorted(by_corpus[corpus])
        rng.shuffle(groups)
        k = max(1, round(n * len(groups) / total))
        picked += [(corpus, by_corpus[corpus][g]) for g in groups[:k]]
    return picked[:n] if len(picked) > n else picked


def scenario_sessions(name: str, rows: list[dict], n: int, seed: int) -> list[tuple[str, str]]:
    if name == "mi-practice":
        return pick_sessions(rows, ("validation", "test"), 10**6, seed, corpora=("annomi",))
    if name == "same-mix":
        return pick_sessions(rows, "test", n, seed)
    if name == "train-split":
        return pick_sessions(rows, "train", n, seed)
    raise ValueError(f"unknown scenario {name!r}")


def make_results(
    rows: list[dict], keys: list[tuple[str, str]], folder: Path, corpus_dir: str | None, batch_size: int
) -> dict:
    """Analyse the sessions into `folder` (one subfolder each) and write their corrections; returns counts."""
    labels = {(r["corpus"], r["session"], r["utterance"]): r for r in rows}
    corpora = {c: read_corpus(c, corpus_dir) for c in sorted({c for c, _ in keys})}
    todo = [corpora[c][s] for c, s in keys]
    pipe = build_pipeline(("diarize", "segment", "classify", "aggregate"))
    store = CorrectionStore(folder / CORRECTIONS_FILE)
    fingerprint = model_fingerprint(default_model_path())
    n_utt = n_corr = n_split = 0
    for cs, session in run_pipeline(todo, pipe, batch_size=batch_size, progress="analysing"):
        sub = folder / session.id.replace(":", "_")
        write_outputs(session, sub)
        model = {"name": session.provenance["classify"]["model"], "fingerprint": fingerprint}
        seen: dict[int, int] = defaultdict(int)
        for u in session.utterances:
            seen[u.source] += 1
        for i, u in enumerate(session.utterances):
            n_utt += 1
            r = labels.get((cs.corpus, cs.session, u.source))
            if r is None:
                continue
            n_split += seen[u.source] > 1
            labs = [lab for lab, v in zip(LABEL_ORDER, r["labels"]) if v]
            store.append(
                make_record(
                    session=session.id,
                    utterance=i,
                    labels=labs,
                    reviewer=REVIEWER,
                    speaker=session.role_of(u.speaker),
                    model=model,
                    model_labels=u.markers,
                    source=u.source,
                    source_file=None,
                    session_file=f"{sub.name}/session.json",
                )
            )
            n_corr += 1
    return {"sessions": len(todo), "utterances": n_utt, "corrections": n_corr, "utterances_from_split_records": n_split}


def summarise(runs: list[dict]) -> dict:
    out: dict = {}
    for k in FIGURES:
        b = [r["before"][k] for r in runs if r["before"][k] is not None and r["after"][k] is not None]
        a = [r["after"][k] for r in runs if r["before"][k] is not None and r["after"][k] is not None]
        d = [y - x for x, y in zip(b, a)]
        out[k] = {
            "before_mean": statistics.fmean(b) if b else None,
            "after_mean": statistics.fmean(a) if a else None,
            "difference_mean": statistics.fmean(d) if d else None,
            "difference_sd": statistics.stdev(d) if len(d) > 1 else None,
            "runs_improved": sum(x > 0 for x in d),
            "runs": len(d),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--sessions", type=int, default=24, help="sessions per scenario (mi-practice: all 18)")
    ap.add_argument("--repeats", type=int, default=8, help="fine-tuning runs, each holding out other sessions")
    ap.add_argument("--holdout", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--corpus-dir")
    ap.add_argument(
        "--keep",
        help="keep the analysed sessions, corrections and models in this folder "
        "(they hold corpus text: keep it outside the repository)",
    )
    ap.add_argument("--out", default=str(ROOT / "evaluation" / "results" / "finetune.json"))
    args = ap.parse_args(argv)

    import torch

    from alliance_nlp.finetune import load_base_classifier

    torch.set_num_threads(args.threads)
    t0 = time.time()
    release = ANN_ROOT / RELEASE_NAME
    rows = build_rows(load_annotations(release), args.corpus_dir, splits=release_splits(release))
    clf = load_base_classifier()
    result: dict = {
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m evaluation.eval_finetune " + " ".join(argv if argv is not None else sys.argv[1:]),
        "base_model": clf.config.get("name"),
        "release": release.name,
        "method": (
            "Corrections made from the annotation release's labels of whole corpus sessions analysed by the "
            "product; `alliance_nlp.finetune.finetune` run once per seed, each holding out other whole sessions "
            f"(holdout {args.holdout} of the corrected utterances); figures are finetune's own before/after on its "
            "held-out corrections (base model vs fine-tuned, each at its own thresholds). Difference intervals "
            "per run: bootstrap over that run's held-out sessions."
        ),
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "keep", "corpus_dir")},
        "scenarios": {},
    }
    keep = Path(args.keep) if args.keep else None
    for scenario in args.scenarios:
        with tempfile.TemporaryDirectory(prefix=f"eval-finetune-{scenario}-") as tmp:
            work = (keep / scenario) if keep else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            keys = scenario_sessions(scenario, rows, args.sessions, args.seed)
            print(f"{scenario}: {len(keys)} sessions", file=sys.stderr)
            data = make_results(rows, keys, work / "results", args.corpus_dir, args.batch_size)
            cache: dict = {}
            runs = []
            for k in range(args.repeats):
                cfg = FinetuneConfig(holdout=args.holdout, seed=args.seed + k, threads=args.threads)
                rep = finetune(
                    [work / "results" / CORRECTIONS_FILE],
                    work / f"model-{k}",
                    config=cfg,
                    classifier=clf,
                    force=True,
                    vector_cache=cache,
                    log=lambda m: print(f"  {m}", file=sys.stderr),
                )
                h = rep["figures"]["held_out"]
                runs.append(
                    {
                        "seed": cfg.seed,
                        "train_sessions": len(rep["split"]["train"]["sessions"]),
                        "held_out_sessions": rep["split"]["held_out"]["sessions"],
                        "held_out_utterances": h["utterances"],
                        "before": {f: h["before"][f] for f in FIGURES},
                        "after": {f: h["after"][f] for f in FIGURES},
                        "difference_ci95": {f: h["difference"][f]["ci95"] for f in FIGURES},
                        "per_label_f1": {
                            lab: [h["before"]["labels"][lab]["f1"], h["after"]["labels"][lab]["f1"]]
                            for lab in LABEL_ORDER
                        },
                        "held_out_positives": {lab: h["before"]["labels"][lab]["positives"] for lab in LABEL_ORDER},
                        "head_pull": (rep["prior_choice"] or {}).get("labels"),
                        "calibration_fit": rep["calibration_fit"],
                        "seconds": rep["seconds"],
                    }
                )
                b, a = h["before"], h["after"]
                print(
                    f"  seed {cfg.seed}: macro-F1 {b['macro_f1']:.3f} -> {a['macro_f1']:.3f}; micro-F1 "
                    f"{b['micro_f1']:.3f} -> {a['micro_f1']:.3f} ({rep['seconds']:.0f} s)",
                    file=sys.stderr,
                )
            result["scenarios"][scenario] = {
                "what": SCENARIOS[scenario],
                "sessions": [f"{c}:{s}" for c, s in keys],
                "data": data,
                "corrections_per_label": rep["corrections"]["label_positives"],
                "summary": summarise(runs),
                "runs": runs,
            }
    result["seconds"] = round(time.time() - t0, 1)
    write_json_atomic(args.out, result)
    for scenario, r in result["scenarios"].items():
        s = r["summary"]
        print(
            f"{scenario}: "
            + "; ".join(
                f"{k} {s[k]['before_mean']:.3f} -> {s[k]['after_mean']:.3f} ({s[k]['runs_improved']}/{s[k]['runs']} runs "
                "better)"
                for k in FIGURES
                if s[k]["before_mean"] is not None
            )
        )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
