"""Accuracy gate for reduced precision: a precision is offered only if, on the held-out test split run
through the product, it agrees with fp32.

    .venv/bin/python -m evaluation.precision_gate [--model DIR] [--paths int8-onnxruntime,int8-torch,bf16-torch]
                                                  [--write-resource]

Every path runs the whole test sessions through `Pipeline(diarize, segment, classify)` (evaluation/product.py),
with the corpus's role labels, exactly as `alliance-nlp analyze` would; the reference is fp32 on ONNX
Runtime, the default fp32 path (fp32 on torch is measured too, as a check that the two fp32 runtimes
agree). Criteria, per path, over every utterance x label of the test split:
- marker agreement (marker at the model's thresholds, fp32 vs the path) >= 99%;
- mean absolute probability difference <= 0.01.
Also reported: the largest difference, agreement per label, and throughput on this machine (a side figure:
the corpora's sessions, whatever else the machine is doing; evaluation/bench_batch.py measures speed).

Writes evaluation/results/precision.json; with --write-resource, also the pass/fail record that the
runtime reads (alliance_nlp/resources/precision_gate.json, keyed by a digest of the model's files). The
corpora's text never leaves ../shared/data: only counts and differences are written.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from alliance_nlp.files import write_json_atomic
from alliance_nlp.integrity import refresh_manifest_for
from alliance_nlp.labels import LABELS

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("fp32-torch", "int8-onnxruntime", "int8-torch", "bf16-torch")
RUNTIME = {"onnxruntime": "onnx", "torch": "torch"}


def test_sessions(model: str | None, corpus_dir: str | None) -> list:
    """The held-out test split's whole sessions (the release the model was trained on)."""
    from alliance_nlp.classify import default_model_path
    from alliance_nlp.model import read_config
    from training.corpora import read_corpus
    from training.dataset import build_rows, load_annotations, model_release, release_splits

    ann = model_release(read_config(model or default_model_path()))
    rows = [
        r for r in build_rows(load_annotations(ann), corpus_dir, splits=release_splits(ann)) if r["split"] == "test"
    ]
    out = []
    for corpus in sorted({r["corpus"] for r in rows}):
        whole = read_corpus(corpus, corpus_dir)
        out += [whole[k] for k in sorted({r["session"] for r in rows if r["corpus"] == corpus})]
    return out


def run(sessions: list, model: str | None, precision: str, runtime: str, threads: int) -> tuple[np.ndarray, dict]:
    from evaluation.product import TAG_STEPS, build_pipeline, run_pipeline

    t0 = time.perf_counter()
    pipe = build_pipeline(
        TAG_STEPS,
        model,
        classify={"precision": precision, "backend": RUNTIME[runtime], "threads": threads, "check_gate": False},
    )
    load = time.perf_counter() - t0
    t = time.perf_counter()
    P = [
        np.array([[u.probabilities[lab] for lab in LABELS] for u in s.utterances])
        for _, s in run_pipeline(sessions, pipe, batch_size=16)
    ]
    dt = time.perf_counter() - t
    P = np.concatenate(P)
    return P, {"load_s": round(load, 2), "seconds": round(dt, 2), "utterances_per_s": round(len(P) / dt, 1)}


def compare(ref: np.ndarray, P: np.ndarray, thresholds: np.ndarray) -> dict:
    agree = (ref >= thresholds) == (P >= thresholds)
    diff = np.abs(ref - P)
    return {
        "agreement": round(float(agree.mean()), 5),
        "mean_abs_diff": round(float(diff.mean()), 5),
        "max_abs_diff": round(float(diff.max()), 4),
        "agreement_by_label": {lab: round(float(agree[:, i].mean()), 4) for i, lab in enumerate(LABELS)},
        "markers_changed": int((~agree).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the shipped model)")
    ap.add_argument("--corpus-dir")
    ap.add_argument(
        "--paths", default=",".join(PATHS), help=f"precision-runtime pairs to gate (default {','.join(PATHS)})"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "evaluation" / "results" / "precision.json"))
    ap.add_argument(
        "--write-resource",
        action="store_true",
        help="record pass/fail for the runtime (alliance_nlp/resources/precision_gate.json)",
    )
    args = ap.parse_args(argv)

    from alliance_nlp import precision as prec
    from alliance_nlp.artifact import read_config
    from alliance_nlp.classify import default_model_path

    model_dir = Path(args.model) if args.model else default_model_path()
    cfg = read_config(model_dir)
    thresholds = np.asarray(cfg["calibration"]["threshold"], dtype=float)
    sessions = test_sessions(args.model, args.corpus_dir)
    print(f"{len(sessions)} test sessions", file=sys.stderr)
    ref, ref_speed = run(sessions, args.model, "fp32", "onnxruntime", args.threads)
    results: dict = {}
    for path in [p.strip() for p in args.paths.split(",") if p.strip()]:
        precision, runtime = path.split("-", 1)
        print(f"{path} ...", file=sys.stderr)
        P, speed = run(sessions, args.model, precision, runtime, args.threads)
        m = compare(ref, P, thresholds)
        m["passed"] = bool(m["agreement"] >= prec.MIN_AGREEMENT and m["mean_abs_diff"] <= prec.MAX_MEAN_ABS_DIFF)
        m["speed_on_this_machine"] = speed
        results[path] = m
        print(
            f"  agreement {100 * m['agreement']:.2f}%  mean |dp| {m['mean_abs_diff']:.4f}  "
            f"{'PASS' if m['passed'] else 'FAIL'}",
            file=sys.stderr,
        )
    digest = prec.model_digest(model_dir)
    out = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": cfg.get("name"),
        "model_digest": digest,
        "data": {
            "split": "held-out test (session-grouped), whole sessions through Pipeline(diarize, segment, classify)",
            "sessions": len(sessions),
            "utterances": int(len(ref)),
        },
        "reference": {"path": "fp32-onnxruntime", "speed_on_this_machine": ref_speed},
        "criteria": {"min_agreement": prec.MIN_AGREEMENT, "max_mean_abs_diff": prec.MAX_MEAN_ABS_DIFF},
        "machine": {
            "cpu": prec.cpu_name(),
            "cores": len(__import__("os").sched_getaffinity(0)),
            "matrix_features": prec.matrix_features(),
            "python": platform.python_version(),
            "threads": args.threads,
        },
        "results": results,
    }
    write_json_atomic(args.out, out)
    if args.write_resource:
        f = prec.gate_file()
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            data = {}
        data.setdefault("format", prec.GATE_FORMAT)
        data.setdefault("version", 1)
        data["criteria"] = out["criteria"]
        data.setdefault("models", {})[digest] = {
            "model": cfg.get("name"),
            "measured": out["generated"],
            "cpu": out["machine"]["cpu"],
            "results": {
                k: {key: v[key] for key in ("passed", "agreement", "mean_abs_diff", "max_abs_diff")}
                for k, v in results.items()
            },
        }
        write_json_atomic(f, data)
        refresh_manifest_for(f)
        print(f"wrote {f}", file=sys.stderr)
    print(
        json.dumps(
            {
                k: {"agreement": v["agreement"], "mean_abs_diff": v["mean_abs_diff"], "passed": v["passed"]}
                for k, v in results.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
