"""Train the alliance-marker classifier and write the model folder.

    python -m training.train_classifier --config training/configs/default.yaml \
        --output models/alliance-markers-v2

Reads the annotation release (default data/annotations/v2/alliance_markers.v2.0.jsonl, built with
`python -m training.annotations build --root data/annotations/v2`) joined to the corpus text, and the
corpora's own annotations as auxiliary targets (`aux_weight`); trains on the release's fixed train
split, selects the epoch and calibrates on validation, and never reads the test split. Metrics go to
<output>/train_log.jsonl (one JSON object per line: start, every 10 steps, each epoch, calibration).

The training state is saved to <output>.checkpoint every 10 minutes and after each epoch; run the same
command again after a stop and it resumes there, ending with the weights an uninterrupted run would
have (the log goes on where it stopped). The checkpoint is removed when the model folder is written.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from alliance_nlp.integrity import write_manifest  # noqa: E402
from training.annotations import CURRENT_RELEASE  # noqa: E402
from training.classifier import data_version, load_config, train  # noqa: E402
from training.dataset import build_rows, load_annotations, release_splits  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(Path(__file__).parent / "configs" / "default.yaml"))
    ap.add_argument("--output", required=True, help="model folder to write")
    ap.add_argument(
        "--annotations", help=f"release JSONL (default {CURRENT_RELEASE.relative_to(CURRENT_RELEASE.parents[2])})"
    )
    ap.add_argument("--corpus-dir")
    ap.add_argument("--log", help="metrics log (default <output>/train_log.jsonl)")
    ap.add_argument("--checkpoint", help="training state to resume from and save to (default <output>.checkpoint)")
    ap.add_argument("--checkpoint-minutes", type=float, default=10.0, help="how often to save it (default 10)")
    ap.add_argument("--no-checkpoint", action="store_true", help="neither save nor resume training state")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a config option, e.g. --set epochs=1 --set context.lookahead=2",
    )
    args = ap.parse_args(argv)

    cfg = load_config(args.config)
    for kv in args.set:
        k, v = kv.split("=", 1)
        top, _, sub = k.partition(".")  # "context.lookahead=2" sets one key of a nested option
        if not hasattr(cfg, top) or (sub and not isinstance(getattr(cfg, top), dict)):
            ap.error(f"unknown option {k}")
        if sub:
            getattr(cfg, top)[sub] = json.loads(v)
        else:
            setattr(cfg, top, json.loads(v))
    ann = Path(args.annotations) if args.annotations else CURRENT_RELEASE
    rows = build_rows(load_annotations(ann), args.corpus_dir, splits=release_splits(ann))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    log_path = Path(args.log) if args.log else out / "train_log.jsonl"
    ckpt = None if args.no_checkpoint else Path(args.checkpoint or f"{out}.checkpoint")
    if ckpt is None or not ckpt.is_file():
        log_path.write_text("")  # a fresh run; a resumed one appends

    def log(rec):
        rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **rec}
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)

    train(
        cfg,
        rows,
        out,
        log=log,
        data_info=data_version(ann),
        checkpoint=ckpt,
        checkpoint_every_s=60 * args.checkpoint_minutes,
    )
    if (out / "config.json").is_file():
        write_manifest(out)  # the log was appended after the artifact was saved
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
