"""Train the diarization models (speaker roles; speaker changes in unlabelled text) from the
development corpora and write them to alliance_nlp/resources/ as JSON.

    .venv/bin/python -m training.train_roles [--corpus-dir ../shared/data] [--out alliance_nlp/resources]

Deterministic (lbfgs logistic regression, fixed data order); about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from alliance_nlp.integrity import refresh_manifest_for  # noqa: E402
from training.corpora import CORPUS_ENV, resolve_corpus_dir  # noqa: E402
from training.roles import (  # noqa: E402
    fit_role_model,
    fit_turn_model,
    fit_unit_role_model,
    load_dev_sessions,  # noqa: E402
    turn_examples,
)

VERSION = "1.0"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--corpus-dir",
        default=os.environ.get(CORPUS_ENV),
        help=f"corpus folder (default ${CORPUS_ENV} or ../shared/data)",
    )
    ap.add_argument("--out", default=str(ROOT / "alliance_nlp" / "resources"))
    args = ap.parse_args(argv)
    corpus_dir = resolve_corpus_dir(args.corpus_dir)
    t0 = time.time()
    sessions = load_dev_sessions(corpus_dir)
    n_a = sum(cs.corpus == "annomi" for cs in sessions)
    meta = {
        "version": VERSION,
        "trained_on": f"AnnoMI dev ({n_a} sessions) + ESConv train/valid ({len(sessions) - n_a} sessions)",
        "trained": _dt.date.today().isoformat(),
        "script": "training/train_roles.py",
    }
    out = Path(args.out)
    role = fit_role_model(sessions, meta=meta)
    role.save(out / "role_model.json")
    print(f"role model: {role.meta['n_train']} speaker examples -> {out / 'role_model.json'}", flush=True)
    turn_ex = {f"{cs.corpus}:{cs.session}": turn_examples(cs) for cs in sessions}
    turn = fit_turn_model(sessions, turn_ex, meta=meta)
    turn.save(out / "turn_model.json")
    print(
        f"turn model: {turn.meta['n_train']} boundaries -> {out / 'turn_model.json'} ({time.time() - t0:.0f}s)",
        flush=True,
    )
    unit = fit_unit_role_model(sessions, turn_ex, meta=meta)
    unit.save(out / "unit_role_model.json")
    print(
        f"unit role model: {unit.meta['n_train']} sentences, {len(unit.features)} features -> "
        f"{out / 'unit_role_model.json'} ({time.time() - t0:.0f}s)"
    )
    refresh_manifest_for(out / "unit_role_model.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
