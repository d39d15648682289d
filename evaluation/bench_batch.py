"""End-to-end speed of `analyze`, every precision, batches, cold start and a kill-and-resume check (a script,
not a test: it takes minutes).

    .venv/bin/python -m evaluation.bench_batch [--sessions 200] [--long 1952] [--repeats 3] [--quick]

In one run and one process tree, each figure in a fresh child process:
1. encoder throughput (utterances/s, warm, median of `--repeats`) on the same invented utterances:
   the plain transformers loop (AutoModel with the LoRA merged, unsorted batches of 32 padded to their
   longest, tokenized per batch, mean-pooled), our fp32 path, and each reduced-precision path;
2. end to end: `analyze` of one long session (`--long` utterances, default 1,952) in a fresh process,
   cold start included, per precision: utterances/s, and the ratio to the plain loop's throughput;
3. cold start: a two-line transcript end to end in a fresh process (`python -m alliance_nlp analyze`),
   median of 5 (bytecode compiled first, as a pip install does);
4. a batch of `--sessions` sessions of mixed length: sessions/hour with 1 and 2 worker processes (and
   whether both give identical outputs), peak RSS per worker (from the manifest);
5. the same batch killed with SIGKILL midway and rerun: every session complete, none analysed twice
   (finished folders untouched), none lost.
Peak RSS from wait4 (the child process) and from the workers' own records; CPU model and matrix features
(AMX, AVX512-BF16, VNNI) from /proc/cpuinfo. Text: invented utterances from evaluation.bench_classifier
(about 25 tokens on average with a long tail), never corpus text. Writes evaluation/results/bench_batch.json.
The machine may be shared: the load average is recorded at start and end, and ratios are measured within
the run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.bench_classifier import invented_utterance  # noqa: E402

PATHS = ("fp32-onnxruntime", "int8-onnxruntime", "int8-torch", "bf16-torch", "fp32-torch")
RUNTIME = {"onnxruntime": "onnx", "torch": "torch"}


# ---- workloads ------------------------------------------------------------------------------------
def write_session(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = [f"{'Therapist' if i % 2 == 0 else 'Client'}: {invented_utterance(rng)}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def mixed_batch(folder: Path, n: int, seed: int = 11) -> int:
    """n sessions, 10 to 240 utterances (lognormal, median about 30): short check-ins to long sessions."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    total = 0
    for i in range(n):
        k = min(240, max(10, int(rng.lognormvariate(3.4, 0.6))))
        write_session(folder / f"session_{i:04d}.txt", k, seed * 1000 + i)
        total += k
    return total


def utterances(n: int, seed: int = 5) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    return [invented_utterance(rng) for _ in range(n)], [("therapist", "client")[i % 2] for i in range(n)]


# ---- child processes -------------------------------------------------------------------------------
def worker_encoder(args) -> dict:
    """Encoder throughput of one path, warm, median of repeats (in its own process; at least one pass,
    more while within --budget seconds, up to --repeats)."""
    import resource

    from alliance_nlp.artifact import with_role

    texts, roles = utterances(args.n)
    if args.path == "plain":
        import torch

        from alliance_nlp.encoder import load_base
        from alliance_nlp.model import merge_lora
        from alliance_nlp.resources import DEFAULT_MODEL_NAME

        torch.set_num_threads(args.threads)
        base = load_base()
        merge_lora(base.model, ROOT / "models" / DEFAULT_MODEL_NAME / "adapter")
        model, tok = base.model.eval(), base.tokenizer

        def encode(texts: list[str], roles: list[str]) -> None:
            inputs = [with_role(t, r) for t, r in zip(texts, roles)]
            with torch.inference_mode():
                for i in range(0, len(inputs), 32):  # in input order, padded to the batch's longest
                    b = tok(inputs[i : i + 32], padding=True, truncation=True, max_length=128, return_tensors="pt")
                    h = model(**b).last_hidden_state
                    m = b["attention_mask"].unsqueeze(-1).float()
                    (h * m).sum(1) / m.sum(1)
    else:
        from alliance_nlp.classify import MarkerClassifier

        precision, runtime = args.path.split("-", 1)
        clf = MarkerClassifier.load(
            precision=precision, backend=RUNTIME[runtime], threads=args.threads, check_gate=False
        )
        if clf.backend == "onnx":

            def encode(texts: list[str], roles: list[str]) -> None:
                clf.encoder.encode_ids(clf.encoder.tokenize([with_role(t, r) for t, r in zip(texts, roles)]))
        else:
            import torch

            from alliance_nlp.encoder import encode_batches
            from alliance_nlp.model import tokenize_utterances

            def encode(texts: list[str], roles: list[str]) -> None:
                with torch.inference_mode():
                    ids = tokenize_utterances(clf.tokenizer, texts, roles, clf.max_length)
                    encode_batches(clf.encoder, clf.tokenizer, ids, clf.batch_size, clf.device)

    encode(texts[:32], roles[:32])  # warm-up
    times: list[float] = []
    budget = time.perf_counter() + args.budget
    while len(times) < args.repeats and (not times or time.perf_counter() < budget):
        t = time.perf_counter()
        encode(texts, roles)
        times.append(time.perf_counter() - t)
    return {
        "path": args.path,
        "utterances": len(texts),
        "seconds": [round(x, 3) for x in times],
        "utterances_per_s": round(len(texts) / statistics.median(times), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def worker_analyze(args) -> dict:
    """`analyze` of files in this fresh process, with a precision that may not be gated (measurement)."""
    from alliance_nlp.batch import PipelineSpec, analyze

    precision, runtime = args.path.split("-", 1)
    spec = PipelineSpec(config={"classify": {"precision": precision, "backend": RUNTIME[runtime], "check_gate": False}})
    r = analyze(args.files, args.output, spec, workers=args.workers)
    return {"processed": r.processed, "failed": len(r.failed), "precision": r.precision}


# ---- the benchmark -----------------------------------------------------------------------------------
def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def session_stamps(out: Path) -> dict[str, int]:
    return {
        p.name: (p / ".complete.json").stat().st_mtime_ns
        for p in out.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / ".complete.json").is_file()
    }


def same_outputs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir() if p.is_dir() and not p.name.startswith("."))
    if names != sorted(p.name for p in b.iterdir() if p.is_dir() and not p.name.startswith(".")):
        return False
    return all(
        (a / n / f).read_bytes() == (b / n / f).read_bytes()
        for n in names
        for f in ("session.json", "utterances.csv", "summary.json", "report.html")
    )


def worker_rss(out: Path) -> dict:
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()[1:]]
    by = {}
    for r in recs:
        if r.get("worker_peak_rss_mb"):
            by[r["worker"]] = max(by.get(r["worker"], 0), r["worker_peak_rss_mb"])
    return by


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--long", type=int, default=1952, help="utterances in the long session")
    ap.add_argument("--encoder-utterances", type=int, default=400)
    ap.add_argument("--budget", type=float, default=90, help="seconds per encoder path before repeats stop")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    ap.add_argument("--out", default=str(ROOT / "evaluation" / "results" / "bench_batch.json"))
    ap.add_argument("--worker", choices=["encoder", "analyze"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker_encoder(args) if args.worker == "encoder" else worker_analyze(args)))
        return 0
    if args.quick:
        args.sessions, args.long, args.encoder_utterances, args.repeats = 12, 200, 100, 1

    from alliance_nlp.precision import cpu_name, matrix_features

    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    me = [sys.executable, str(Path(__file__).resolve())]
    # children may write bytecode, as an installed package has it
    child_env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "TOKENIZERS_PARALLELISM": "false",
    }
    t_start = time.time()
    result: dict = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu": cpu_name(),
            "cores": len(os.sched_getaffinity(0)),
            "matrix_features": matrix_features(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "text": "invented utterances (evaluation.bench_classifier), about 25 tokens on average, long tail; "
        "never corpus text",
    }
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "alliance_nlp")], check=False)
    tmp = Path(tempfile.mkdtemp(prefix="alliance-bench-"))

    def child(cmd: list[str]) -> dict:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        out = p.stdout.read().decode() if p.stdout else ""
        err = p.stderr.read().decode() if p.stderr else ""
        res = {
            "wall_s": round(wall, 3),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
            "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
            "rc": os.waitstatus_to_exitcode(status),
        }
        try:
            res.update({k: v for k, v in json.loads(out.strip().splitlines()[-1]).items() if k != "peak_rss_mb"})
        except (ValueError, IndexError):
            pass
        if res["rc"]:
            res["stderr"] = err[-1500:]
            print(f"child failed: {' '.join(cmd)}\n{err[-1500:]}", file=sys.stderr)
        return res

    try:
        # 1. encoder throughput
        enc = {}
        for path in ["plain", *paths]:
            print(f"encoder: {path}", file=sys.stderr)
            enc[path] = child(
                [
                    *me,
                    "--worker",
                    "encoder",
                    "--path",
                    path,
                    "--n",
                    str(args.encoder_utterances),
                    "--repeats",
                    str(args.repeats),
                    "--threads",
                    str(args.threads),
                    "--budget",
                    str(args.budget),
                ]
            )
        plain = enc["plain"].get("utterances_per_s")
        for r in enc.values():
            if plain and r.get("utterances_per_s"):
                r["ratio_to_plain_loop"] = round(r["utterances_per_s"] / plain, 2)
        fp32 = enc.get("fp32-onnxruntime", {}).get("utterances_per_s")
        for path, r in enc.items():
            if fp32 and r.get("utterances_per_s") and path != "plain":
                r["ratio_to_our_fp32"] = round(r["utterances_per_s"] / fp32, 2)
        result["encoder"] = enc

        # 2. cold start: two lines end to end, fresh process each time
        two = tmp / "two.txt"
        two.write_text("Therapist: How was your week?\nClient: Hard, but I tried the walks again.\n")
        cold = [
            child([sys.executable, "-m", "alliance_nlp", "analyze", str(two), "-o", str(tmp / f"two{i}"), "-q"])
            for i in range(6)
        ][1:]  # the first writes bytecode of anything compileall missed
        result["cold_start"] = {
            "runs": cold,
            "median_wall_s": median_of(cold, "wall_s"),
            "median_cpu_s": median_of(cold, "cpu_s"),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in cold),
        }

        # 3. one long session end to end, per precision, cold start included
        long = tmp / "long_session.txt"
        write_session(long, args.long, seed=1952)
        e2e = {}
        for path in paths:
            speed = enc.get(path, {}).get("ratio_to_our_fp32")
            if path != "fp32-onnxruntime" and (speed is None or speed < 0.9):
                e2e[path] = {"skipped": f"encoder at {speed}x our fp32 on this CPU: end to end would only be slower"}
                continue
            print(f"end to end: {path}", file=sys.stderr)
            runs = [
                child(
                    [*me, "--worker", "analyze", "--path", path, "--output", str(tmp / f"long-{path}-{i}"), str(long)]
                )
                for i in range(args.repeats)
            ]
            ok = [r for r in runs if not r["rc"]]
            if not ok:
                e2e[path] = {"runs": runs}
                continue
            wall = median_of(ok, "wall_s")
            e2e[path] = {
                "runs": runs,
                "median_wall_s": wall,
                "utterances_per_s": round(args.long / wall, 1),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
            }
            if plain:
                e2e[path]["ratio_to_plain_loop"] = round(args.long / wall / plain, 2)
        base = e2e.get("fp32-onnxruntime", {}).get("utterances_per_s")
        for r in e2e.values():
            if base and r.get("utterances_per_s"):
                r["ratio_to_our_fp32"] = round(r["utterances_per_s"] / base, 2)
        result["end_to_end_long_session"] = {"utterances": args.long, "paths": e2e}

        # 4. a batch of mixed-length sessions: 1 and 2 workers, default precision
        folder = tmp / "batch"
        n_utts = mixed_batch(folder, args.sessions)
        batch = {"sessions": args.sessions, "utterances": n_utts}
        for w in (1, 2):
            print(f"batch: {w} worker(s)", file=sys.stderr)
            out = tmp / f"batch-w{w}"
            r = child(
                [
                    sys.executable,
                    "-m",
                    "alliance_nlp",
                    "analyze",
                    str(folder),
                    "-o",
                    str(out),
                    "-q",
                    "--workers",
                    str(w),
                ]
            )
            rep = json.loads((out / "batch_report.json").read_text())
            batch[f"workers_{w}"] = {
                **r,
                "processed": rep["processed"],
                "precision": rep["precision"],
                "threads_per_worker": rep["threads_per_worker"],
                "sessions_per_hour": round(3600 * args.sessions / r["wall_s"], 1),
                "utterances_per_s": round(n_utts / r["wall_s"], 1),
                "worker_peak_rss_mb": worker_rss(out),
            }
        batch["workers_2_identical_to_workers_1"] = same_outputs(tmp / "batch-w1", tmp / "batch-w2")
        result["batch"] = batch

        # 5. killed with SIGKILL midway, then rerun
        print("batch: SIGKILL midway and rerun", file=sys.stderr)
        out = tmp / "batch-kill"
        cmd = [sys.executable, "-m", "alliance_nlp", "analyze", str(folder), "-o", str(out), "-q"]
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env)
        t0 = time.time()
        while p.poll() is None and time.time() - t0 < 3600:
            m = out / "manifest.jsonl"
            if m.is_file() and m.read_text().count('"done"') >= args.sessions // 2:
                break
            time.sleep(0.05)
        killed = p.poll() is None
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        before = session_stamps(out)
        time.sleep(1.5)  # workers die with their parent (PR_SET_PDEATHSIG)
        r = child(cmd)
        rep = json.loads((out / "batch_report.json").read_text())
        after = session_stamps(out)
        names = sorted(p.name for p in out.iterdir() if p.is_dir())
        result["kill_and_resume"] = {
            "killed_midway": killed,
            "complete_after_kill": len(before),
            "rerun": r,
            "rerun_processed": rep["processed"],
            "rerun_skipped": rep["skipped"],
            "all_complete": len(after) == args.sessions and names == sorted(after),
            "none_analysed_twice": all(after.get(k) == v for k, v in before.items())
            and rep["processed"] == args.sessions - len(before),
            "none_lost": len(after) == args.sessions,
            "identical_to_uninterrupted_run": same_outputs(tmp / "batch-w1", out),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["bench_seconds"] = round(time.time() - t_start, 1)
    from alliance_nlp.files import write_json_atomic

    write_json_atomic(args.out, result)
    summary = {
        "cpu": result["machine"]["cpu"],
        "matrix_units": [
            k
            for k, v in result["machine"]["matrix_features"].items()
            if v and k.startswith(("amx", "avx512_bf16", "avx512_vnni", "avx_vnni"))
        ],
        "encoder_utt_per_s": {k: v.get("utterances_per_s") for k, v in result["encoder"].items()},
        "encoder_ratio_to_plain": {k: v.get("ratio_to_plain_loop") for k, v in result["encoder"].items()},
        "end_to_end_ratio_to_plain": {k: v.get("ratio_to_plain_loop") for k, v in e2e.items()},
        "end_to_end_ratio_to_our_fp32": {k: v.get("ratio_to_our_fp32") for k, v in e2e.items()},
        "cold_start_s": result["cold_start"]["median_wall_s"],
        "cold_start_cpu_s": result["cold_start"]["median_cpu_s"],
        "sessions_per_hour": {
            k: v["sessions_per_hour"]
            for k, v in result["batch"].items()
            if k.startswith("workers_") and isinstance(v, dict)
        },
        "kill_and_resume": {k: v for k, v in result["kill_and_resume"].items() if k != "rerun"},
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
