"""The `alliance-nlp` command: a thin layer over the library.

Exit codes: 0 success; 1 some inputs of a batch failed (the rest were written); 2 a usage or input
error (one line naming the file and the line or field).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .errors import AllianceError, InputError, UsageError
from .files import private_umask

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
DEPRECATED_COMMANDS = {"calibrate": "fit-mapping", "evaluate": "check-ratings"}  # until 0.3

log = logging.getLogger("alliance_nlp")


def _err(msg: str) -> None:
    print(f"alliance-nlp: error: {msg}", file=sys.stderr)


def _warn(msg: str) -> None:
    print(f"alliance-nlp: warning: {msg}", file=sys.stderr)


def _reader_options(pairs: list[str] | None) -> dict[str, Any]:
    """`--option KEY=VALUE` pairs; `columns=text:Utterance,speaker:Who` gives a column mapping."""
    opts: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE")
        if key == "columns":
            try:
                opts[key] = dict(item.split(":", 1) for item in value.split(","))
            except ValueError:
                raise UsageError(f"--option {pair!r}: expected columns=field:Column,field:Column") from None
        else:
            opts[key] = value
    return opts


def _mapping_arg(args: argparse.Namespace) -> str | None:
    if getattr(args, "calibration", None):
        _warn("--calibration is deprecated; use --mapping (the same file)")
        return str(args.calibration)
    return getattr(args, "mapping", None)


# ---- commands ---------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    from .ingest import read

    session = read(args.file, format=args.format, **_reader_options(args.option))
    if args.output:
        session.save(args.output)
        print(f"wrote {args.output} ({len(session.turns)} records, {len(session.speakers)} speakers)", file=sys.stderr)
    else:
        json.dump(session.to_dict(), sys.stdout, indent=1, ensure_ascii=False)
        print()
    return EXIT_OK


def cmd_analyze(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .batch import PipelineSpec, analyze
    from .pipeline import DEFAULT_STEPS

    steps = [s.strip() for s in args.steps.split(",") if s.strip()] if args.steps else list(DEFAULT_STEPS)
    config: dict[str, dict[str, Any]] = {}
    if args.redact and args.redact_input:
        raise UsageError("--redact and --redact-input: choose one (--redact-input already redacts every output)")
    if args.redact_input:
        steps = ["redact", *[s for s in steps if s != "redact"]]
        # the classifier sees redacted text; a --therapist name is translated to its placeholder
        config["redact"] = {"therapist": args.therapist} if args.therapist else {}
    elif args.redact:
        steps = [*[s for s in steps if s != "redact"], "redact"]
        config["redact"] = {}
    if args.therapist and "diarize" in steps and not args.redact_input:
        config["diarize"] = {"therapist": args.therapist}
    if "classify" in steps:
        config["classify"] = {
            k: v
            for k, v in (
                ("path", args.model),
                ("precision", args.precision),
                ("device", args.device),
                ("backend", args.runtime),
            )
            if v
        }
    mapping = _mapping_arg(args)
    if mapping and "aggregate" in steps:
        config["aggregate"] = {"path": mapping}
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: must be at least 1")
    workers: int | str = args.workers
    if workers != "auto":
        try:
            workers = int(workers)
        except ValueError:
            raise UsageError(f"--workers {args.workers!r}: a number or auto") from None
        if workers < 1:
            raise UsageError(f"--workers {workers}: must be at least 1")
    if args.scheduler and args.engine != "dask":
        raise UsageError("--scheduler needs --engine dask")

    def terminated(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGTERM (a scheduler's kill, `kill PID`) ends the run like Ctrl-C: the batch report is written
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminated) if main_thread else None
    try:
        report = analyze(
            args.files,
            args.output,
            PipelineSpec(tuple(steps), config),
            format=args.format,
            reader_options=_reader_options(args.option),
            batch_size=args.batch_size,
            progress=not args.quiet,
            on_failure=lambda f: _err(f["error"]),
            workers=workers,
            engine=args.engine,
            scheduler=args.scheduler,
            force=args.force,
            opaque_names=bool(args.redact or args.redact_input),
        )
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    single = report.total == 1 and not Path(args.files[0]).is_dir()
    if not args.quiet:
        if single and report.processed:
            print(f"wrote {report.outputs[0]}/session.json, utterances.csv, summary.json", file=sys.stderr)
        elif not single:
            skipped = f", {report.skipped} already done" if report.skipped else ""
            print(
                f"{report.processed} of {report.total} sessions analysed{skipped} ({report.precision or 'fp32'}, "
                f"{report.workers} worker(s), {report.seconds:.1f} s); report in "
                f"{Path(args.output) / 'batch_report.json'}",
                file=sys.stderr,
            )
    if report.failed:
        return EXIT_USAGE if single else EXIT_PARTIAL
    return EXIT_OK


def _rated_sessions(args: argparse.Namespace) -> tuple[Any, dict[str, dict[str, float]], list[tuple[str, Any]]]:
    """(scale, ratings by session id, [(id, analysed session)] matched to ratings)."""
    from .instruments import load_scale, read_ratings
    from .outputs import load_results

    scale = load_scale(args.scale or args.instrument)
    ratings = read_ratings(args.ratings, scale, args.id_column, args.sums)
    sessions = load_results(args.results)
    pairs, seen = [], set()
    for sid in ratings:
        s = sessions.get(sid)
        if s is not None and id(s) not in seen:
            pairs.append((sid, s))
            seen.add(id(s))
    return scale, ratings, pairs


def cmd_fit_mapping(args: argparse.Namespace) -> int:
    import numpy as np

    from .aggregate import session_features
    from .mapping import FEATURES, WaiMapping

    scale, ratings, pairs = _rated_sessions(args)
    if len(pairs) < 5:
        raise InputError(args.ratings, f"only {len(pairs)} rated sessions match analysed sessions; need at least 5")
    X = np.array([[session_features(s)[f] for f in FEATURES] for _, s in pairs])
    Y = {k: np.array([ratings[sid].get(k, np.nan) for sid, _ in pairs]) for k in ("goal", "task", "bond")}
    Y = {k: v for k, v in Y.items() if not np.all(np.isnan(v))}
    if not Y:
        raise InputError(args.ratings, "no goal/task/bond scores to fit on (a total alone cannot separate subscales)")
    mapping = WaiMapping.fit(
        X,
        Y,
        alpha=args.alpha,
        family=args.family,
        meta={"name": f"fitted on {Path(args.ratings).name}", "instrument": scale.name, "sessions": len(pairs)},
    )
    mapping.save(args.output)
    print(
        f"fitted on {len(pairs)} sessions ({scale.name}); cross-validated RMSE: "
        + ", ".join(f"{k} {v['cv_rmse']:.2f}" for k, v in mapping.meta["fit"].items())
        + f"; wrote {args.output}",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_check_ratings(args: argparse.Namespace) -> int:
    import numpy as np

    from .aggregate import Aggregator
    from .agreement import agreement, binary_auc, render_table
    from .files import write_json_atomic

    scale, ratings, pairs = _rated_sessions(args)
    if not pairs:
        raise InputError(args.ratings, "no rated session matches an analysed session id")
    agg = Aggregator.load(_mapping_arg(args))
    est = {sid: agg(s).results.estimates for sid, s in pairs}
    report: dict[str, Any] = {
        "instrument": scale.name,
        "sessions_rated": len(ratings),
        "sessions_matched": len(pairs),
        "mapping": agg.mapping.name,
        "subscales": {},
    }
    for k in ("goal", "task", "bond", "total"):
        ids = [sid for sid, _ in pairs if ratings[sid].get(k) is not None and est[sid][k].estimate is not None]
        if ids:
            report["subscales"][k] = agreement(
                np.array([est[i][k].estimate for i in ids]),
                np.array([ratings[i][k] for i in ids]),
                n_boot=args.n_boot,
                low=np.array([est[i][k].low for i in ids], dtype=float),
                high=np.array([est[i][k].high for i in ids], dtype=float),
            )
    if args.outcome:
        outcome = _binary_column(args.ratings, args.id_column, args.outcome)
        ids = [sid for sid, _ in pairs if sid in outcome]
        report["outcome"] = {
            "column": args.outcome,
            "auc_by_scale": {
                k: binary_auc(
                    np.array([est[i][k].estimate for i in ids], dtype=float),
                    np.array([outcome[i] for i in ids]),
                    n_boot=args.n_boot,
                )
                for k in ("goal", "task", "bond", "total")
            },
        }
    if args.output:
        write_json_atomic(args.output, report)
    print(render_table(report))
    return EXIT_OK


def _binary_column(path: str, id_column: str, column: str) -> dict[str, int]:
    """{session id: 0/1} from a CSV column with two distinct values (1/0, yes/no, true/false, or any
    two labels: the one that sorts second is 1); an InputError naming the file and line otherwise."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise InputError(path, f"no {column!r} column for --outcome", line=1)
        raw = {row[id_column]: (row[column] or "").strip().lower() for row in reader if row.get(id_column)}
    values = sorted({v for v in raw.values() if v})
    truthy = {"1", "yes", "true", "high", "good"}
    if len(values) != 2:
        raise InputError(path, f"--outcome {column!r} must have exactly two values, found {len(values)}", field=column)
    one = next((v for v in values if v in truthy), values[1])
    return {sid: int(v == one) for sid, v in raw.items() if v}


def cmd_course(args: argparse.Namespace) -> int:
    from .aggregate import Aggregator
    from .course import course_shape, natural_key
    from .files import write_json_atomic
    from .outputs import load_results

    sessions = {s.id: s for s in load_results(args.results).values()}
    clients: dict[str, list[tuple[str, str]]] = {}
    if args.clients:
        try:
            with open(args.clients, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as exc:
            raise InputError(args.clients, f"cannot read ({exc.strerror})") from None
        for n, row in enumerate(rows, start=2):
            for col in ("session", "client"):
                if not row.get(col):
                    raise InputError(args.clients, f"missing {col}", line=n, field=col)
            clients.setdefault(row["client"], []).append((row.get("order") or row["session"], row["session"]))
    else:
        clients["client"] = [(str(s.meta.get("session_number", sid)), sid) for sid, s in sessions.items()]
    agg = Aggregator.load(_mapping_arg(args)) if _mapping_arg(args) else None
    out: dict[str, dict[str, Any]] = {}
    for client, items in clients.items():
        items.sort(key=lambda t: natural_key(t[0]))
        course: list[dict[str, Any]] = []
        for _, sid in items:
            s = sessions.get(sid)
            if s is None:
                raise InputError(args.clients, f"session {sid!r} not among the analysed sessions")
            res = agg(s).results if agg else s.results
            if not res:
                raise InputError(sid, "session has no estimates (analyze with the aggregate step)")
            course.append({"session": sid, **{k: v.to_dict() for k, v in res.estimates.items()}})
        out[client] = {
            "sessions": course,
            "shape": course_shape([c["total"]["estimate"] for c in course], delta=args.delta),
        }
    if args.output:
        write_json_atomic(args.output, out)
    for client, c in out.items():
        print(f"{client}: {c['shape']}  " + " -> ".join(f"{x['total']['estimate']:.2f}" for x in c["sessions"]))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export, load_analysed

    items = load_analysed(args.results)
    if args.redact:
        from .redact import Redactor

        redactor = Redactor()
        items = [(redactor.redact_session(s), None) for s, _ in items]  # type: ignore[misc]  # summaries recomputed
    paths = export(items, to=args.to, output=args.output)
    print(f"wrote {len(paths)} file(s): " + ", ".join(map(str, paths)), file=sys.stderr)
    return EXIT_OK


def cmd_checksum(args: argparse.Namespace) -> int:
    from .integrity import MANIFEST, verify_folder, write_manifest

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    if args.check:
        verify_folder(folder)
        print(f"{folder}: every file matches {MANIFEST}", file=sys.stderr)
    else:
        path = write_manifest(folder)
        print(f"wrote {path} ({len(path.read_text().splitlines())} files)", file=sys.stderr)
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    from .review.app import serve

    return serve(
        args.results,
        host=args.host,
        port=args.port,
        reviewer=args.reviewer,
        model=args.model,
        open_browser=args.open,
        redact=args.redact,
    )


def cmd_review_agreement(args: argparse.Namespace) -> int:
    from .files import write_json_atomic
    from .review.agreement import render_agreement, review_agreement
    from .review.data import load_entries
    from .review.store import CORRECTIONS_FILE, read_corrections

    files = args.corrections or [str(Path(args.results) / CORRECTIONS_FILE)]
    for f in files:
        if not Path(f).is_file():
            raise InputError(f, "no corrections file (review some utterances with `alliance-nlp review` first)")
    latest, _info = read_corrections(files)
    entries = load_entries(args.results)[0] if Path(args.results).is_dir() else {}
    report = review_agreement(latest, {sid: e.session for sid, e in entries.items()})
    if args.output:
        write_json_atomic(args.output, report)
    print(render_agreement(report))
    return EXIT_OK


def cmd_finetune(args: argparse.Namespace) -> int:
    from .finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(
        holdout=args.holdout, scope=args.train, epochs=args.epochs, seed=args.seed, threads=args.threads
    )
    say = (lambda msg: None) if args.quiet else (lambda msg: print(f"finetune: {msg}", file=sys.stderr))
    report = finetune(
        args.corrections,
        args.output,
        base=args.model,
        results=args.results,
        reviewers=args.reviewer,
        config=cfg,
        name=args.name,
        force=args.force,
        log=say,
    )
    held = report["figures"].get("held_out")
    if held:
        b, a = held["before"], held["after"]
        print(
            f"held-out corrections ({held['utterances']} utterances, {held['sessions']} session(s)): macro-F1 "
            f"{b['macro_f1'] or 0:.3f} -> {a['macro_f1'] or 0:.3f}, micro-F1 {b['micro_f1'] or 0:.3f} -> "
            f"{a['micro_f1'] or 0:.3f} (base -> fine-tuned); card: {Path(args.output) / 'README.md'}"
        )
    else:
        print(f"no held-out sessions, so no before/after figures; wrote {args.output}")
    return EXIT_OK


# ---- parser -----------------------------------------------------------------------------------
def _deprecated(old: str, func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        _warn(f"'{old}' is deprecated and will be removed in 0.3; use '{DEPRECATED_COMMANDS[old]}'")
        return func(args)

    return run


def _ratings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", help="analyze output folders or session.json files")
    p.add_argument("--ratings", required=True, help="CSV: session id + subscale scores, total or items")
    p.add_argument("--instrument", default="wai-sr", help="wai, wai-s, wai-sr, wai-o, wai-o-s")
    p.add_argument("--scale", help="scale file describing another instrument (items, range, key)")
    p.add_argument("--id-column", default="session")
    p.add_argument("--sums", action="store_true", help="scores are sums, not item means")


def _mapping_opt(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--mapping", help=help)
    p.add_argument("--calibration", help=argparse.SUPPRESS)  # deprecated spelling of --mapping


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alliance-nlp", description="Measure the therapeutic alliance in session transcripts."
    )
    p.add_argument("--version", action="version", version=f"alliance-nlp {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log each stage; tracebacks for internal errors")
    p.add_argument(
        "--shared-output",
        action="store_true",
        help="create output files and folders as the umask allows (default: readable by you only, since "
        "they hold clinical text; also ALLIANCE_NLP_SHARED_OUTPUT=1)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    pi = sub.add_parser("ingest", help="read a transcript into session JSON (no analysis)")
    pi.add_argument("file")
    pi.add_argument("--format", help="reader to use instead of detection")
    pi.add_argument("-o", "--output", help="session JSON to write (default: stdout)")
    pi.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="reader option, e.g. words=asr.json (rttm), delimiter=';' or columns=text:Utterance,speaker:Who (csv)",
    )
    pi.set_defaults(func=cmd_ingest)

    pa = sub.add_parser("analyze", help="run the pipeline and write session.json, utterances.csv, summary.json")
    pa.add_argument("files", nargs="+", help="transcript files or folders (a batch goes on past broken files)")
    pa.add_argument("-o", "--output", required=True, help="output folder (one subfolder per session in a batch)")
    pa.add_argument("--format", help="reader to use instead of detection")
    pa.add_argument("--option", action="append", metavar="KEY=VALUE", help="reader option (see ingest --help)")
    pa.add_argument("--therapist", help="speaker id or name of the therapist (overrides role attribution)")
    pa.add_argument("--model", help="classifier folder (default: the shipped model)")
    _mapping_opt(pa, "WAI mapping file from `alliance-nlp fit-mapping` (default: the shipped one)")
    pa.add_argument("--steps", help="comma-separated pipeline components (default: diarize,segment,classify,aggregate)")
    pa.add_argument("--batch-size", type=int, default=8, help="sessions whose utterances share classifier batches")
    pa.add_argument(
        "--workers",
        default="auto",
        metavar="N|auto",
        help="worker processes, each loading the model once (default auto: one per core for a large "
        "batch, with the cores' threads split among them)",
    )
    pa.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="where sessions are analysed: this machine, or a Dask cluster (pip install "
        "'alliance-nlp[cluster]'; see docs/cluster.md)",
    )
    pa.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address (tcp://host:8786) or scheduler file (default: a local cluster)",
    )
    pa.add_argument("--force", action="store_true", help="redo sessions a previous run into --output already did")
    pa.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "int8"],
        default="auto",
        help="classifier precision (default auto: the fastest one this CPU has matrix units for "
        "among those that passed the accuracy gate; else fp32)",
    )
    pa.add_argument(
        "--device",
        help="torch device for the classifier, e.g. cuda (default: cpu, or cuda when an NVIDIA GPU is present)",
    )
    pa.add_argument(
        "--runtime",
        choices=["auto", "onnx", "torch"],
        default=None,
        help="classifier runtime (default auto: ONNX Runtime on CPU, torch on a GPU)",
    )
    pa.add_argument(
        "--redact",
        action="store_true",
        help="replace names, places, dates, contacts, ids, organisations and URLs by typed placeholders "
        "([NAME_1], [DATE_2], ...) in every output; the classifier reads the original text; batch "
        "folders are named session-<hash>",
    )
    pa.add_argument(
        "--redact-input",
        action="store_true",
        help="as --redact, but redact first, so the classifier reads only the redacted text",
    )
    pa.add_argument("-q", "--quiet", action="store_true")
    pa.set_defaults(func=cmd_analyze)

    commands = {
        "fit-mapping": ("fit the WAI mapping (features -> Goal/Task/Bond) to your own ratings", cmd_fit_mapping),
        "check-ratings": (
            "compare session estimates with ratings (r, rho, ICC, MAE, RMSE, Bland-Altman)",
            cmd_check_ratings,
        ),
    }
    for name, (help_text, func) in commands.items():
        for cmd in (name, *[old for old, new in DEPRECATED_COMMANDS.items() if new == name]):
            deprecated = cmd != name
            sp = sub.add_parser(cmd, help=f"deprecated: use {name}" if deprecated else help_text)
            _ratings_args(sp)
            if name == "fit-mapping":
                sp.add_argument("-o", "--output", default="wai_mapping.json")
                sp.add_argument("--alpha", type=float, default=1.0, help="ridge penalty (default 1, as shipped)")
                sp.add_argument(
                    "--family",
                    choices=["constrained", "ridge"],
                    default="constrained",
                    help="constrained (default): each subscale reads its own marker (+), ruptures (-) and "
                    "repair (+) with those signs enforced; ridge: all 13 features, unconstrained",
                )
            else:
                _mapping_opt(sp, "WAI mapping file (default: the shipped one)")
                sp.add_argument("--n-boot", type=int, default=1000)
                sp.add_argument(
                    "--outcome",
                    metavar="COLUMN",
                    help="a binary column of the ratings file (e.g. good/poor session): AUC of each estimate",
                )
                sp.add_argument("-o", "--output", help="write the full report (JSON)")
            sp.set_defaults(func=_deprecated(cmd, func) if deprecated else func)

    from .export import FORMATS  # light: errors, files and session only

    pe = sub.add_parser(
        "export",
        help="export analysed sessions to ELAN (.eaf), REFI-QDA (.qdpx: NVivo, ATLAS.ti, "
        "MAXQDA, QualCoder), Parquet or a timestamped transcript (.txt)",
    )
    pe.add_argument("results", nargs="+", help="analyze output folders or session.json files")
    pe.add_argument("--to", required=True, choices=FORMATS, metavar="FORMAT", help="eaf, qdpx, parquet or txt")
    pe.add_argument(
        "-o",
        "--output",
        required=True,
        help="eaf/txt: folder (or file for one session); qdpx: .qdpx "
        "file (a folder gets alliance-nlp.qdpx); parquet: folder",
    )
    pe.add_argument(
        "--redact",
        action="store_true",
        help="replace names, places, dates, numbers and other identifiers with typed placeholders in every file",
    )
    pe.set_defaults(func=cmd_export)

    po = sub.add_parser("course", help="a client's alliance course across sessions and its shape")
    po.add_argument("results", nargs="+")
    po.add_argument("--clients", help="CSV with session, client and optional order columns")
    _mapping_opt(po, "WAI mapping file (default: the estimates already in the results)")
    po.add_argument("--delta", type=float, default=0.25, help="smallest change (WAI-SR points) treated as real")
    po.add_argument("-o", "--output")
    po.set_defaults(func=cmd_course)

    pr = sub.add_parser("review", help="review and correct the markers of analysed sessions in a local web app")
    pr.add_argument("results", help="an analyze output folder")
    pr.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this computer "
        "only; anything else is reachable from the network)",
    )
    pr.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    pr.add_argument("--reviewer", help="your name in the corrections (default: your user name)")
    pr.add_argument(
        "--model",
        help="the model folder the sessions were analysed with, for the fingerprint "
        "recorded with each correction (default: the shipped model)",
    )
    pr.add_argument("--open", action="store_true", help="open the URL in a browser")
    pr.add_argument(
        "--redact",
        action="store_true",
        help="show every session with identifiers replaced by typed placeholders, under opaque ids "
        "(corrections made here go to corrections.redacted.jsonl, which finetune does not read)",
    )
    pr.set_defaults(func=cmd_review)

    pg = sub.add_parser(
        "review-agreement", help="reviewers' agreement with each other and with the model (Cohen's kappa per label)"
    )
    pg.add_argument("results", help="the analyze output folder that was reviewed")
    pg.add_argument("--corrections", nargs="+", help="corrections files (default: RESULTS/corrections.jsonl)")
    pg.add_argument("-o", "--output", help="write the full report (JSON)")
    pg.set_defaults(func=cmd_review_agreement)

    pf = sub.add_parser("finetune", help="continue training the classifier on reviewers' corrections")
    pf.add_argument("--corrections", nargs="+", required=True, help="corrections.jsonl files from `review`")
    pf.add_argument("-o", "--output", required=True, help="new model folder (for analyze --model)")
    pf.add_argument("--model", help="model to start from (default: the shipped model)")
    pf.add_argument(
        "--results",
        nargs="+",
        help="analyze output folders holding the corrected sessions (default: each corrections file's folder)",
    )
    pf.add_argument("--reviewer", nargs="+", help="use only these reviewers' corrections")
    pf.add_argument(
        "--holdout",
        type=float,
        default=0.25,
        help="share of corrected utterances held out, whole sessions, for the before/after figures",
    )
    pf.add_argument(
        "--train",
        choices=("head", "context"),
        default="head",
        help="head (default): refit the classification head, its pull towards the base head chosen by "
        "cross-validation; context: also train the context layer (slower, needs more corrections)",
    )
    pf.add_argument("--epochs", type=int, default=3, help="with --train context: passes over the corrections")
    pf.add_argument("--seed", type=int, default=13)
    pf.add_argument("--threads", type=int, help="torch CPU threads")
    pf.add_argument("--name", help="the new model's name (default: <base>-ft-<date>)")
    pf.add_argument("--force", action="store_true", help="replace the output folder")
    pf.add_argument("-q", "--quiet", action="store_true")
    pf.set_defaults(func=cmd_finetune)

    pk = sub.add_parser(
        "checksum", help="record (or --check) the SHA-256 of every file of a model folder you trust (SHA256SUMS)"
    )
    pk.add_argument("folder")
    pk.add_argument("--check", action="store_true", help="verify the folder against its SHA256SUMS instead")
    pk.set_defaults(func=cmd_checksum)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    shared = args.shared_output or os.environ.get("ALLIANCE_NLP_SHARED_OUTPUT") == "1"
    previous = None if shared else private_umask()
    try:
        return int(args.func(args))
    except AllianceError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    finally:
        if previous is not None:  # for callers that run the CLI in their own process (tests, notebooks)
            os.umask(previous)


if __name__ == "__main__":
    raise SystemExit(main())
