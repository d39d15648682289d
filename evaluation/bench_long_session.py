"""Long sessions: peak memory and time of `alliance-nlp analyze` on one session of N utterances.

The session is our own invented CBT example (data/examples/session_cbt.txt) repeated with advancing
timestamps to N utterances. Each run is a fresh `alliance-nlp analyze` process; its peak resident set
size comes from the kernel (getrusage of the finished child). Targets (issue "Reliability and privacy"):
5,000 utterances under 1.5 GB, 20,000 complete, memory growing at most linearly.

    python -m evaluation.bench_long_session --sizes 1000 5000 20000 --runtime onnx torch
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alliance_nlp.precision import cpu_name

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "examples" / "session_cbt.txt"
RESULTS = ROOT / "evaluation" / "results" / "long_sessions.json"


def make_session(n: int, path: Path) -> Path:
    lines = [ln for ln in EXAMPLE.read_text(encoding="utf-8").splitlines() if re.match(r"\[\d", ln)]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("Session: long synthetic session (our invented example, repeated)\n\n")
        for i in range(n):
            t = i * 6
            fh.write(
                f"[{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}]" + lines[i % len(lines)].split("]", 1)[1] + "\n"
            )
    return path


def run_one(transcript: Path, out: Path, runtime: str) -> dict:
    """One analyze process; its wall time and peak RSS (RUSAGE_CHILDREN is the max over finished children,
    so every measurement runs in its own fresh python that starts the CLI)."""
    code = (
        "import resource, sys; from alliance_nlp.cli import main; rc = main(sys.argv[1:]); "
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); raise SystemExit(rc)"
    )
    cmd = [sys.executable, "-c", code, "analyze", str(transcript), "-o", str(out), "-q", "--runtime", runtime]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    m = re.search(r"PEAK_KB (\d+)", proc.stderr)
    return {
        "rc": proc.returncode,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(int(m.group(1)) / 1024) if m else None,
        "error": None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1:],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--runtime", nargs="+", default=["onnx", "torch"], choices=["onnx", "torch"])
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for n in args.sizes:
            f = make_session(n, Path(td) / f"long{n}.txt")
            for rt in args.runtime:
                r = {"utterances": n, "runtime": rt, **run_one(f, Path(td) / f"out-{n}-{rt}", rt)}
                rows.append(r)
                print(json.dumps(r), flush=True)
    res = {
        "generated": time.strftime("%Y-%m-%d"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "note": "one fresh `alliance-nlp analyze` process per row; peak RSS of that process",
        "runs": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    _ = resource  # getrusage is read in the child
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
