"""Does repair's structure help the shipped model? Repair needs a rupture or strain before it.

    python -m evaluation.repair_structure [--model DIR] [--k 4]

On the probabilities the pipeline gives (the shipped model, whole sessions, per coded record), the
repair score alone against the repair score multiplied by the highest rupture probability of the k
records before it (`training.head_sweep.repair_structure`: gate exponents 0, 0.5, 1), each with its
threshold chosen on the validation split and scored once on the test split. The same measurement ran on
the frozen-encoder sweep; this is the one on the model users get.
Writes evaluation/results/repair_structure.json (shown in the model card's ablation notes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from alliance_nlp.files import write_json_atomic
from training.head_sweep import repair_structure

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "evaluation" / "results" / "repair_structure.json"
GATES = ("gate_0.0", "gate_0.5", "gate_1.0")
MIN_VAL_GAIN = 0.01  # validation repair AUPRC a gate must add over none (set in 0.6.0, after 0.003 was seen)


def chosen_gate(result: dict) -> str:
    """The form validation picks: the gate with the best validation AUPRC if it beats no gate by at
    least MIN_VAL_GAIN, else no gate (smaller gains moved with the weights from one run to the next)."""
    best = max(GATES, key=lambda g: result[g]["val_auprc"])
    gain = result[best]["val_auprc"] - result["gate_0.0"]["val_auprc"]
    return best if gain >= MIN_VAL_GAIN else "gate_0.0"


def per_session(rows: list[dict], P: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split record-level probabilities and labels into sessions (rows sorted by session, position)."""
    keys = [(r["corpus"], r["session"]) for r in rows]
    Y = np.array([r["labels"] for r in rows], dtype=int)
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]] + [len(keys)]
    return [P[a:b] for a, b in zip(starts, starts[1:])], [Y[a:b] for a, b in zip(starts, starts[1:])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the shipped default model)")
    ap.add_argument("--corpus-dir")
    ap.add_argument("--k", type=int, default=4, help="records before a repair in which a rupture is looked for")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)

    from alliance_nlp.classify import default_model_path
    from alliance_nlp.model import read_config
    from evaluation.product import split_probabilities, split_rows
    from training.dataset import model_release

    model = Path(args.model) if args.model else default_model_path()
    ann = model_release(read_config(model))
    split = split_rows(ann, args.corpus_dir)
    got = {
        s: per_session(split[s], split_probabilities(split[s], s, args.model, args.corpus_dir))
        for s in ("validation", "test")
    }
    out = repair_structure(*got["validation"], *got["test"], k=args.k)
    out = {"model": model.name, "k": args.k, **out}
    write_json_atomic(Path(args.out), out)
    for g in ("gate_0.0", "gate_0.5", "gate_1.0"):
        print(
            f"{g}: validation AUPRC {out[g]['val_auprc']:.3f}; test repair F1 {out[g]['f1']:.3f} "
            f"(best {out[g]['f1_oracle']:.3f}), AUPRC {out[g]['auprc']:.3f}"
        )
    print(
        f"test repairs with a coded rupture in the {args.k} records before: {out['gold_repairs_after_gold_rupture']:.0%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
