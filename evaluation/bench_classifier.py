"""Speed and memory of the alliance-marker classifier on CPU (a script, not a timed test).

    .venv/bin/python -m evaluation.bench_classifier [--model DIR] [--threads 2] [--utterances 1200]

Measures, each in a fresh worker process so peak RSS belongs to that measurement alone:
- cold start: import + MarkerClassifier.load() (hash check of the base weights, LoRA merge), and the
  first call on a short session;
- throughput end to end in utterances/second at encoder batch sizes 1, 32 and 128, median of 3 timed
  passes after one warm-up pass, and peak RSS: per session (`clf(session)` on 60-utterance sessions,
  as the pipeline calls it: tokenization, encoder, context layer, calibration, filling the Session)
  and in bulk (`predict_proba` over all sessions at once, batches spanning sessions);
- cost of a 50-minute session (600 utterances) at the default batch size;
- with --compare DIR: both models' per-session throughput, paired: each worker process loads both and
  times them in alternating passes (A B B A ...), and several processes alternate which one loads
  first. Throughput differs by up to about 20% between fresh processes of the same model on a shared
  machine, so the ratio is taken within each process and reported per process with its median and range.
Text: utterances generated from our own invented vocabulary (never corpus text), word counts drawn so
that the encoder sees about 25 tokens on average with a long tail to 250 (truncated at max_length).
Writes evaluation/results/bench_classifier.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OPENERS = ["so", "well", "okay", "I guess", "you know", "honestly", "right", "hmm", "yeah", "and"]
PHRASES = [
    "I have been thinking about the week",
    "it was harder than I expected",
    "my sister called again",
    "we could look at that together",
    "what would make the mornings easier",
    "I keep putting it off",
    "that sounds like a lot to carry",
    "I am not sure it will help",
    "the walks after dinner went well",
    "you said last time that sleep matters",
    "part of me wants to change it",
    "work has been loud and busy",
    "would it be okay if I suggested something",
    "it feels like nobody notices",
    "I tried the list twice",
    "on a scale from one to ten maybe a six",
    "let us come back to the plan",
    "I felt calmer on Tuesday",
    "the money worries never really stop",
    "it makes sense that you are tired",
    "I do not want to argue",
    "maybe next week I can try again",
    "the bus was late so I missed it",
    "it is the same every evening",
]


def invented_utterance(rng: random.Random) -> str:
    if rng.random() < 0.01:  # the occasional long monologue
        n_words = rng.randint(150, 240)
    else:
        n_words = min(230, max(1, int(rng.lognormvariate(2.8, 0.75))))
    words: list[str] = []
    if rng.random() < 0.4:
        words.append(rng.choice(OPENERS))
    while len(words) < n_words:
        words.extend(rng.choice(PHRASES).split())
    text = " ".join(words[:n_words])
    return text[0].upper() + text[1:] + rng.choice([".", ".", "?", "..."])


def invented_session(n: int, seed: int, sid: str = "bench"):
    from alliance_nlp.session import Session, Speaker, Turn, Utterance

    rng = random.Random(seed)
    turns = []
    for i in range(n):
        spk = "T" if i % 2 == 0 else "C"
        turns.append(Turn(spk, [Utterance(invented_utterance(rng), spk)]))
    return Session(sid, turns=turns, speakers={"T": Speaker("T", role="therapist"), "C": Speaker("C", role="client")})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ---- worker (one measurement per process) ------------------------------------------------------
def n_tokens(tok, text: str) -> int:
    """Token count with either runtime's tokenizer (transformers on torch, `tokenizers` on ONNX)."""
    return len(tok(text)["input_ids"]) if callable(tok) else len(tok.encode(text).ids)


def worker(args) -> dict:
    wall0, t0 = time.time(), time.perf_counter()  # includes importing torch and transformers
    import torch

    torch.set_num_threads(args.threads)
    from alliance_nlp.classify import MarkerClassifier

    clf = MarkerClassifier.load(args.model, device="cpu", batch_size=args.batch_size, dtype=args.dtype)
    load_s = time.perf_counter() - t0
    out: dict = {
        "batch_size": args.batch_size,
        "dtype": args.dtype or "float32",
        "import_and_load_s": load_s,
        "rss_after_load_mb": peak_rss_mb(),
    }
    if args.task == "cold":
        t = time.perf_counter()
        clf(invented_session(12, seed=1))
        out["first_call_12_utterances_s"] = time.perf_counter() - t
        out["cold_start_to_first_result_s"] = load_s + out["first_call_12_utterances_s"]
        out["interpreter_start_s"] = wall0 - args.spawned_at if args.spawned_at else None
    elif args.task == "throughput":
        sessions = [invented_session(60, seed=100 + i, sid=f"s{i}") for i in range(args.utterances // 60)]
        n = sum(len(s.utterances) for s in sessions)
        clf(invented_session(60, seed=99))  # warm-up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            for s in sessions:
                clf(s)
            times.append(time.perf_counter() - t)
        out.update({"utterances": n, "seconds": times, "utterances_per_s": n / statistics.median(times)})
        # bulk: all sessions in one predict_proba call (batches span sessions), as batch tagging does
        bulk = []
        for _ in range(3):
            t = time.perf_counter()
            clf.predict_proba(sessions)
            bulk.append(time.perf_counter() - t)
        out.update({"bulk_seconds": bulk, "bulk_utterances_per_s": n / statistics.median(bulk)})
        tok = clf.tokenizer
        from alliance_nlp.classify import with_role

        lens = sorted(
            min(n_tokens(tok, with_role(u.text, "client")), clf.max_length) for s in sessions for u in s.utterances
        )
        raw = sorted(n_tokens(tok, u.text) for s in sessions for u in s.utterances)
        out["tokens"] = {
            "mean_untruncated": statistics.mean(raw),
            "p50": raw[len(raw) // 2],
            "p95": raw[int(len(raw) * 0.95)],
            "max_untruncated": raw[-1],
            "mean_model_input": statistics.mean(lens),
        }
    elif args.task == "session":
        s = invented_session(600, seed=7)
        clf(invented_session(60, seed=99))  # warm-up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            clf(invented_session(600, seed=7))
            times.append(time.perf_counter() - t)
        out.update({"utterances": len(s.utterances), "seconds": times, "median_s": statistics.median(times)})
    elif args.task == "pair":  # both models in this process, passes alternating A B B A ...
        other = MarkerClassifier.load(args.compare, device="cpu", batch_size=args.batch_size, dtype=args.dtype)
        sessions = [invented_session(60, seed=100 + i, sid=f"s{i}") for i in range(args.utterances // 60)]
        n = sum(len(s.utterances) for s in sessions)
        clfs = {"model": clf, "compare": other}
        for c in clfs.values():
            c(invented_session(60, seed=99))  # warm-up
        times: dict[str, list[float]] = {"model": [], "compare": []}
        for i in range(args.passes):
            for k in ("model", "compare")[:: 1 if i % 2 == 0 else -1]:
                t = time.perf_counter()
                for s in sessions:
                    clfs[k](s)
                times[k].append(time.perf_counter() - t)
        out.update(
            {
                "utterances": n,
                "seconds": times,
                "utterances_per_s": {k: n / statistics.median(v) for k, v in times.items()},
                "ratio_model_over_compare": statistics.median(times["compare"]) / statistics.median(times["model"]),
            }
        )
    elif args.task == "dtype_agreement":
        import numpy as np

        sessions = [invented_session(60, seed=300 + i) for i in range(5)]
        ref = MarkerClassifier.load(args.model, device="cpu")
        a = np.concatenate(ref.predict_proba(sessions))
        b = np.concatenate(clf.predict_proba(sessions))
        out["max_abs_probability_difference_vs_float32"] = float(np.abs(a - b).max())
        out["marker_agreement_vs_float32"] = float(np.mean((a >= ref.thresholds) == (b >= clf.thresholds)))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def run_worker(
    args, task: str, batch_size: int, dtype: str | None = None, model: str | None = None, compare: str | None = None
) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        task,
        "--spawned-at",
        repr(time.time()),
        "--batch-size",
        str(batch_size),
        "--threads",
        str(args.threads),
        "--utterances",
        str(args.utterances),
    ]
    if model or args.model:
        cmd += ["--model", model or args.model]
    if dtype:
        cmd += ["--dtype", dtype]
    if task == "pair":  # `compare` is the model loaded second
        cmd += ["--compare", compare or args.compare, "--passes", str(args.passes)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if res.returncode:
        raise RuntimeError(f"worker {task} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def compare(args) -> dict:
    """Per-session throughput (batch 64) of --model and --compare, paired within each worker process
    (both loaded, passes alternating A B B A ...); `--rounds` processes alternate which model loads
    first. Before 0.7.0 each model ran in its own processes, and the ratio carried the ~20% spread
    between fresh processes of one model (0.6.0's same-shape weights measured 0.87-0.93 that way)."""
    from alliance_nlp.classify import default_model_path

    def shown(p: str) -> str:  # a path inside the checkout is shown relative to it
        q = Path(p).resolve()
        return str(q.relative_to(ROOT)) if q.is_relative_to(ROOT) else p

    model, other = args.model or str(default_model_path()), args.compare
    paths = {"model": shown(model), "compare": shown(other)}
    procs = []
    for i in range(args.rounds):
        if i % 2 == 0:
            r = run_worker(args, "pair", 64, model=model, compare=other)
        else:  # the compared model loads first in this process
            r = run_worker(args, "pair", 64, model=other, compare=model)
            for key in ("seconds", "utterances_per_s"):  # back to this model / the compared one
                r[key] = {"model": r[key]["compare"], "compare": r[key]["model"]}
            r["ratio_model_over_compare"] = 1 / r["ratio_model_over_compare"]
        r["loaded_first"] = "model" if i % 2 == 0 else "compare"
        procs.append(r)
    ratios = [p["ratio_model_over_compare"] for p in procs]
    out: dict = {}
    for k in ("model", "compare"):
        ups = statistics.median(p["utterances_per_s"][k] for p in procs)
        out[k] = {
            "path": paths[k],
            "utterances_per_s": ups,
            "per_process": [p["utterances_per_s"][k] for p in procs],
            "cpu_seconds_per_1000_utterances": 1000 / ups * args.threads,
            "wall_seconds_per_1000_utterances": 1000 / ups,
        }
    out["method"] = (
        f"{args.rounds} worker processes, each loading both models and timing {args.passes} passes of "
        f"{procs[0]['utterances']} invented utterances per model in the order A B B A ...; the ratio is "
        "the compared model's median pass time over this model's, within each process"
    )
    out["processes"] = procs
    out["ratio_per_process"] = ratios
    out["ratio_model_over_compare"] = statistics.median(ratios)
    out["ratio_range"] = [min(ratios), max(ratios)]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--utterances", type=int, default=1200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"])
    ap.add_argument("--worker", choices=["cold", "throughput", "session", "dtype_agreement", "pair"])
    ap.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--bf16", action="store_true", help="also measure dtype=bfloat16")
    ap.add_argument(
        "--compare",
        metavar="DIR",
        help="another model folder (e.g. the previous model): per-session throughput of both, interleaved "
        "in this run, and the cost per 1,000 utterances of each",
    )
    ap.add_argument("--compare-only", action="store_true", help="only the --compare measurement")
    ap.add_argument("--rounds", type=int, default=4, help="worker processes for --compare")
    ap.add_argument("--passes", type=int, default=6, help="timed passes per model in each --compare process")
    ap.add_argument("--out", default=str(ROOT / "evaluation" / "results" / "bench_classifier.json"))
    args = ap.parse_args(argv)
    if args.compare_only and not args.compare:
        ap.error("--compare-only needs --compare DIR")
    if args.worker:
        args.task = args.worker
        print(json.dumps(worker(args)))
        return 0

    import torch

    from alliance_nlp.precision import cpu_name

    t0 = time.time()
    load1 = os.getloadavg()
    result: dict = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_model": cpu_name(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_at_start": [round(x, 2) for x in load1],
        },
        "text": "invented utterances (our own phrases), lognormal word counts; never corpus text",
    }
    if not args.compare_only:
        result["cold_start"] = run_worker(args, "cold", 64)
        result["throughput"] = {str(bs): run_worker(args, "throughput", bs) for bs in (1, 32, 128)}
        result["session_50_minutes"] = run_worker(args, "session", 64)
    if args.bf16 and not args.compare_only:
        result["bfloat16"] = {
            "throughput_128": run_worker(args, "throughput", 128, "bfloat16"),
            "agreement": run_worker(args, "dtype_agreement", 64, "bfloat16"),
        }
    if args.compare:
        result["comparison"] = compare(args)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["bench_seconds"] = round(time.time() - t0, 1)
    from alliance_nlp.files import write_json_atomic

    write_json_atomic(args.out, result)
    if args.compare_only:
        c = result["comparison"]
        print(json.dumps({"ratio_model_over_compare": c["ratio_model_over_compare"], "ratio_range": c["ratio_range"]}))
        return 0
    tp = {bs: round(v["utterances_per_s"], 1) for bs, v in result["throughput"].items()}
    bulk = {bs: round(v["bulk_utterances_per_s"], 1) for bs, v in result["throughput"].items()}
    print(
        json.dumps(
            {
                "utterances_per_s": tp,
                "bulk_utterances_per_s": bulk,
                "cold_start_s": round(result["cold_start"]["cold_start_to_first_result_s"], 2),
                "session_600_s": round(result["session_50_minutes"]["median_s"], 2),
                "peak_rss_mb": {bs: round(v["peak_rss_mb"]) for bs, v in result["throughput"].items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
