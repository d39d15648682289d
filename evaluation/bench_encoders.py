"""What a stronger base encoder costs: encoding throughput of two base encoders, measured in one run.

    python -m evaluation.bench_encoders --other DIR/all-mpnet-base-v2@SHA256 [--utterances 512] [--rounds 3]

Both encoders encode the same role-prefixed utterances of the release's test split (length-sorted
batches of 64, at most 128 tokens, CPU, the threads given), in alternating rounds so that whatever else
the machine does falls on both; the ratio is the figure to quote, with the CPU named. Encoding only:
the context layer and the rest of the pipeline cost the same whichever encoder feeds them.
Writes evaluation/results/bench_encoders.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from alliance_nlp.encoder import encode_batches, load_base
from alliance_nlp.model import tokenize_utterances
from alliance_nlp.precision import cpu_name

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--other", required=True, help="the encoder to compare, FOLDER@SHA256 of its model.safetensors")
    ap.add_argument("--utterances", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "evaluation" / "results" / "bench_encoders.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from training.head_sweep import RELEASE, sessions

    test = [s for s in sessions(RELEASE) if s.split == "test"]
    texts, roles = [], []
    for s in test:
        texts += s.texts
        roles += s.roles
    texts, roles = texts[: args.utterances], roles[: args.utterances]
    folder, _, sha = args.other.partition("@")
    encoders = {"all-MiniLM-L6-v2": load_base(), Path(folder).name: load_base(folder, sha256=sha or None)}
    ids = {k: tokenize_utterances(e.tokenizer, texts, roles, 128) for k, e in encoders.items()}
    secs: dict[str, list[float]] = {k: [] for k in encoders}
    with torch.inference_mode():
        for _ in range(args.rounds):
            for k, e in encoders.items():
                t = time.perf_counter()
                encode_batches(e.model, e.tokenizer, ids[k], 64, "cpu")
                secs[k].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in secs.items()}
    base, other = list(encoders)
    out = {
        "cpu": cpu_name(),
        "threads": args.threads,
        "utterances": len(texts),
        "rounds": args.rounds,
        "utterances_per_s": {k: round(len(texts) / v, 1) for k, v in med.items()},
        "parameters_millions": {
            k: round(sum(p.numel() for p in e.model.parameters()) / 1e6, 1) for k, e in encoders.items()
        },
        "cost_ratio": round(med[other] / med[base], 2),
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
