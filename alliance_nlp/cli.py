"""The `alliance-nlp` command: a thin layer over the library.

Exit codes: 0 success; 1 some inputs of a batch failed (the rest were written); 2 a usage or
input error (one line naming the file and the line or field).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from . import __version__
from .errors import AllianceError

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
TRANSCRIPT_SUFFIXES = {".txt", ".csv", ".tsv", ".json", ".jsonl", ".vtt", ".srt", ".rttm", ".docx", ".cha"}

log = logging.getLogger("alliance_nlp")


def _err(msg: str) -> None:
    print(f"alliance-nlp: error: {msg}", file=sys.stderr)


def _expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given; folders expanded to the transcripts inside (sorted, recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TRANSCRIPT_SUFFIXES
                          and not f.name.startswith(".") and not f.name.endswith("_words.json"))
        else:
            out.append(p)
    return out


def _reader_options(pairs: list[str] | None) -> dict:
    """`--option KEY=VALUE` pairs; `columns=text:Utterance,speaker:Who` gives a column mapping."""
    opts: dict = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AllianceError(f"--option {pair!r}: expected KEY=VALUE")
        if key == "columns":
            try:
                value = dict(item.split(":", 1) for item in value.split(","))
            except ValueError:
                raise AllianceError(f"--option {pair!r}: expected columns=field:Column,field:Column") from None
        opts[key] = value
    return opts


def cmd_ingest(args: argparse.Namespace) -> int:
    from .ingest import read
    session = read(args.file, format=args.format, **_reader_options(args.option))
    if args.output:
        session.save(args.output)
        print(f"wrote {args.output} ({len(session.turns)} records, {len(session.speakers)} speakers)",
              file=sys.stderr)
    else:
        import json
        json.dump(session.to_dict(), sys.stdout, indent=1, ensure_ascii=False)
        print()
    return EXIT_OK


def _pipeline_config(args: argparse.Namespace) -> dict:
    cfg: dict = {"diarize": {}, "classify": {}, "aggregate": {}}
    if args.therapist:
        cfg["diarize"]["therapist"] = args.therapist
    if getattr(args, "model", None):
        cfg["classify"]["path"] = args.model
    if getattr(args, "calibration", None):
        cfg["aggregate"]["path"] = args.calibration
    return cfg


def cmd_analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .ingest import read
    from .pipeline import DEFAULT_STEPS, Pipeline
    from .report import write_outputs

    files = _expand_inputs(args.files)
    if not files:
        _err("no transcript files found in the inputs given")
        return EXIT_USAGE
    steps = args.steps.split(",") if args.steps else list(DEFAULT_STEPS)
    options = _reader_options(args.option)
    t0 = time.perf_counter()
    pipe = Pipeline.from_names(steps, _pipeline_config(args))
    log.info("pipeline %s ready in %.1fs", "+".join(pipe.names), time.perf_counter() - t0)
    out = Path(args.output)
    single = len(files) == 1 and not Path(args.files[0]).is_dir()
    failures: list[dict] = []
    done = 0
    bar = tqdm(files, desc="sessions", unit="session", disable=single or args.quiet, file=sys.stderr)
    for f in bar:
        target = out if single else out / _unique_stem(f, files)
        try:
            session = read(f, format=args.format, **options)
            session = pipe(session)
            write_outputs(session, target)
            done += 1
            if single and not args.quiet:
                print(f"wrote {target}/session.json, utterances.csv, summary.json "
                      f"({len(session.utterances)} utterances)", file=sys.stderr)
        except AllianceError as exc:
            failures.append({"file": str(f), "error": str(exc)})
            _err(str(exc))
        except Exception as exc:  # one broken file must not lose the rest of a batch
            if single:
                raise
            failures.append({"file": str(f), "error": f"{type(exc).__name__}: {exc}"})
            _err(f"{f}: {type(exc).__name__}: {exc}")
    if not single:
        from .session import write_json_atomic
        write_json_atomic(out / "batch_report.json", {"processed": done, "failed": failures,
                                                      "steps": pipe.names})
        print(f"{done} of {len(files)} sessions analysed; report in {out / 'batch_report.json'}",
              file=sys.stderr)
    if failures:
        return EXIT_USAGE if single else EXIT_PARTIAL
    return EXIT_OK


def _unique_stem(f: Path, files: list[Path]) -> str:
    same = [g for g in files if g.stem == f.stem]
    return f.stem if len(same) == 1 else f"{f.stem}_{f.suffix.lstrip('.')}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alliance-nlp", description="Measure the therapeutic alliance in session transcripts.")
    p.add_argument("--version", action="version", version=f"alliance-nlp {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log each stage")
    sub = p.add_subparsers(dest="command", required=True)

    pi = sub.add_parser("ingest", help="read a transcript into session JSON (no analysis)")
    pi.add_argument("file")
    pi.add_argument("--format", help="reader to use instead of detection")
    pi.add_argument("-o", "--output", help="session JSON to write (default: stdout)")
    pi.add_argument("--option", action="append", metavar="KEY=VALUE",
                    help="reader option, e.g. words=asr.json (rttm), delimiter=';' or "
                         "columns=text:Utterance,speaker:Who (csv)")
    pi.set_defaults(func=cmd_ingest)

    pa = sub.add_parser("analyze", help="run the pipeline and write session.json, utterances.csv, summary.json")
    pa.add_argument("files", nargs="+", help="transcript files or folders (a batch goes on past broken files)")
    pa.add_argument("-o", "--output", required=True, help="output folder (one subfolder per session in a batch)")
    pa.add_argument("--format", help="reader to use instead of detection")
    pa.add_argument("--option", action="append", metavar="KEY=VALUE", help="reader option (see ingest --help)")
    pa.add_argument("--therapist", help="speaker id or name of the therapist (overrides role attribution)")
    pa.add_argument("--model", help="classifier folder (default: the shipped model)")
    pa.add_argument("--calibration", help="calibration file from `alliance-nlp calibrate`")
    pa.add_argument("--steps", help="comma-separated pipeline components (default: all)")
    pa.add_argument("-q", "--quiet", action="store_true")
    pa.set_defaults(func=cmd_analyze)

    try:  # rating checks live with aggregation
        from .checks_cli import add_commands
        add_commands(sub)
    except ImportError:
        pass
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except AllianceError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
