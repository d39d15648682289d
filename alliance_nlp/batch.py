"""`analyze`: transcripts in, one output folder per session out; resumable, parallel, on a cluster.

    from alliance_nlp import analyze
    report = analyze(["sessions/"], "results/")                 # one process
    report = analyze(["sessions/"], "results/", workers=4)      # four worker processes
    report = analyze(["sessions/"], "results/", engine="dask", scheduler="tcp://host:8786")

A folder run (`alliance_nlp.manifest`):
- holds a lock on the output folder (a second run into it is refused with one line);
- keeps `manifest.jsonl`: per input its content hash, the pipeline's fingerprint (model files, mapping,
  options, precision, reader options, alliance-nlp version), status, error, time;
- skips inputs already done with the same content and fingerprint, and redoes changed ones
  (`force=True` redoes all);
- writes each session to a temporary folder renamed into place, so a run killed at any point leaves only
  complete sessions, and a rerun finishes the rest without analysing any session twice;
- writes `batch_report.json` on every exit, Ctrl-C included (`interrupted: true`).

The per-session work runs in one of the engines of `alliance_nlp.engines`; its results do not depend on
the engine or the number of workers. One file given (not a folder): its outputs go straight into
`output`, with no manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .engines import GroupContext, PipelineSpec, Task, describe_error
from .errors import InputError, UsageError
from .files import write_json_atomic
from .pipeline import Pipeline

__all__ = [
    "BatchReport",
    "PipelineSpec",
    "analyze",
    "default_workers",
    "describe_error",
    "expand_inputs",
    "output_names",
]

TRANSCRIPT_SUFFIXES = {".txt", ".csv", ".tsv", ".json", ".jsonl", ".vtt", ".srt", ".rttm", ".docx", ".cha"}
ENGINES = ("local", "dask")
NOT_IN_FINGERPRINT = {"threads", "batch_size", "check_gate"}  # options that do not change a session's results


@dataclass
class BatchReport:
    """What a run did: sessions written, and each failure as {file, error} (one line, no traceback)."""

    processed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    skipped: int = 0  # already done with the same content and fingerprint (resumed runs)
    total: int = 0  # inputs found
    interrupted: bool = False
    fingerprint: str | None = None
    precision: str | None = None
    engine: str = "local"
    workers: int = 1
    threads_per_worker: int | None = None
    started: str | None = None
    seconds: float = 0.0
    sessions_per_hour: float | None = None
    utterances: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand_inputs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given; folders expanded to the transcripts inside (sorted, recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and f.suffix.lower() in TRANSCRIPT_SUFFIXES
                and not f.name.startswith(".")
                and not f.name.endswith("_words.json")
            )
        else:
            out.append(p)
    return out


def output_names(files: Sequence[Path]) -> dict[Path, str]:
    """A folder name per input: the file stem, with the extension added where two stems collide."""
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    return {f: f.stem if stems[f.stem] == 1 else f"{f.stem}_{f.suffix.lstrip('.')}" for f in files}


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_workers(n_sessions: int, batch_size: int, cores: int | None = None) -> int:
    """Worker processes for `n_sessions` to analyse: one per core, but never more than there are
    groups of `batch_size` sessions, and one when the run is too small to repay starting workers
    (each loads the model: about a second of CPU)."""
    cores = cores or cpu_count()
    groups = math.ceil(n_sessions / max(1, batch_size))
    if n_sessions < 2 * batch_size or groups < 2 or cores < 2:
        return 1
    return max(1, min(cores, groups, 32))


# ---- fingerprints ---------------------------------------------------------------------------------
def _digest_value(v: Any) -> Any:
    """Options as they affect results: a file by its content, a folder by its files' contents."""
    from .manifest import file_sha256
    from .precision import model_digest

    if isinstance(v, (str, os.PathLike)) and str(v):
        p = Path(v)
        if p.is_file():
            return {"file": p.name, "sha256": file_sha256(p)}
        if p.is_dir():
            return {"folder": p.name, "sha256": model_digest(p)}
    if isinstance(v, dict):
        return {str(k): _digest_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_digest_value(x) for x in v]
    return v if isinstance(v, (int, float, bool, type(None), str)) else repr(v)


def resolve_spec(spec: PipelineSpec) -> tuple[PipelineSpec, dict[str, Any]]:
    """The spec with every choice made here, once, so all workers run the same thing: the classifier's
    precision (`auto` resolved for this CPU) and runtime. Checks the model folder and the mapping file
    (one-line errors before any work starts). Returns (spec, what was chosen)."""
    spec.check()
    cfg = {k: dict(v) for k, v in spec.config.items()}
    info: dict[str, Any] = {}
    if "classify" in spec.names:
        from .classify import BACKEND_NAMES, resolve_settings

        c = cfg.setdefault("classify", {})
        prec, backend, why = resolve_settings(
            c.get("path"),
            base_model=c.get("base_model"),
            device=c.get("device"),
            dtype=c.pop("dtype", None),
            precision=c.get("precision"),
            backend=c.get("backend"),
            check_gate=c.get("check_gate", True),
        )
        c["precision"], c["backend"] = prec, backend
        info.update(precision=prec, runtime=BACKEND_NAMES[backend], precision_choice=why)
    if "aggregate" in spec.names:
        from .mapping import WaiMapping

        WaiMapping.load(cfg.get("aggregate", {}).get("path"))  # a missing or broken mapping: fail now
    return PipelineSpec(spec.names, cfg), info


def spec_fingerprint(spec: PipelineSpec, format: str | None, reader_options: dict[str, Any]) -> str:
    """What a session's outputs depend on, hashed: steps, options (files by content), the model's files,
    the mapping, the shipped resources, the reader and its options, and the alliance-nlp version."""
    from . import __version__
    from .classify import default_model_path
    from .mapping import default_mapping_path
    from .precision import model_digest
    from .resources import resource_path

    cfg = spec.config
    desc: dict[str, Any] = {
        "alliance_nlp": __version__,
        "steps": list(spec.names),
        "format": format,
        "reader_options": _digest_value(reader_options or {}),
        "config": {
            k: {o: _digest_value(v) for o, v in sorted(opts.items()) if o not in NOT_IN_FINGERPRINT}
            for k, opts in sorted(cfg.items())
        },
    }
    if "classify" in spec.names:
        desc["model"] = model_digest(cfg.get("classify", {}).get("path") or default_model_path())
    if "aggregate" in spec.names:
        desc["mapping"] = _digest_value(str(cfg.get("aggregate", {}).get("path") or default_mapping_path()))
    if "diarize" in spec.names:
        desc["resources"] = _digest_value(
            [str(resource_path(n)) for n in ("role_model.json", "turn_model.json", "unit_role_model.json")]
        )
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


def _describe(obj: Any, depth: int = 0) -> Any:
    """A built component's settings, as far as they can be seen (for a fingerprint)."""
    import numpy as np

    if isinstance(obj, (int, float, bool, str, type(None))):
        return obj
    if isinstance(obj, os.PathLike):
        return _digest_value(obj)
    if isinstance(obj, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()[:16]
    if depth > 3:
        return type(obj).__name__
    if isinstance(obj, dict):
        return {str(k): _describe(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_describe(v, depth + 1) for v in obj]
    if hasattr(obj, "to_dict"):
        try:
            return _describe(obj.to_dict(), depth + 1)
        except Exception:
            return type(obj).__name__
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith("alliance_nlp"):
        return {
            "type": type(obj).__name__,
            **{
                k: _describe(v, depth + 1)
                for k, v in vars(obj).items()
                if not k.startswith("_") and k not in NOT_IN_FINGERPRINT
            },
        }
    return type(obj).__name__


def pipeline_fingerprint(pipeline: Pipeline, format: str | None, reader_options: dict[str, Any]) -> str:
    """For a pipeline built by the caller: the components' visible settings (and model folders by content)."""
    from . import __version__

    desc = {
        "alliance_nlp": __version__,
        "steps": pipeline.names,
        "format": format,
        "reader_options": _digest_value(reader_options or {}),
        "components": {n: _describe(c) for n, c in pipeline.steps},
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---- the run ----------------------------------------------------------------------------------------
def analyze(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    pipeline: Pipeline | PipelineSpec | None = None,
    *,
    format: str | None = None,
    reader_options: dict[str, Any] | None = None,
    batch_size: int = 8,
    progress: bool = False,
    on_failure: Callable[[dict[str, str]], None] | None = None,
    workers: int | str = 1,
    engine: str = "local",
    scheduler: str | None = None,
    force: bool = False,
    opaque_names: bool = False,
) -> BatchReport:
    """Analyse transcripts and write session.json, utterances.csv, summary.json and report.html per session.

    pipeline: a built `Pipeline` (runs in this process), or a `PipelineSpec` (names and options; each
    worker builds it), default: the default steps. One file given (not a folder): its outputs go
    straight into `output`. Otherwise each session gets a subfolder named after its file, the run is
    resumable (see the module doc), and `output/batch_report.json` records it.
    workers: processes on this machine ("auto": one per core when the batch is large enough);
    engine: "local" or "dask" (`scheduler`: address or scheduler file; default a LocalCluster of
    `workers` processes). force: redo sessions already done. opaque_names: name each session's folder
    `session-<first 12 hex digits of the file's SHA-256>` instead of after its file (file names often
    hold a client's name; used with redaction)."""
    if batch_size < 1:
        raise UsageError(f"batch size {batch_size}: must be at least 1")
    if engine not in ENGINES:
        raise UsageError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    files = expand_inputs(inputs)
    if not files:
        raise InputError(", ".join(map(str, inputs)) or "<no input>", "no transcript files found")
    reader_options = dict(reader_options or {})
    single = len(files) == 1 and not Path(inputs[0]).is_dir()
    if single:
        return _analyze_one(files[0], Path(output), pipeline, format, reader_options, on_failure)
    return _analyze_batch(
        files,
        Path(output),
        pipeline,
        format=format,
        reader_options=reader_options,
        batch_size=batch_size,
        progress=progress,
        on_failure=on_failure,
        workers=workers,
        engine=engine,
        scheduler=scheduler,
        force=force,
        opaque_names=opaque_names,
    )


def _analyze_one(
    f: Path,
    out: Path,
    pipeline: Pipeline | PipelineSpec | None,
    format: str | None,
    reader_options: dict[str, Any],
    on_failure: Callable[[dict[str, str]], None] | None,
) -> BatchReport:
    from .ingest import read
    from .outputs import write_outputs

    pipe = _built(pipeline)
    report = BatchReport(steps=pipe.names, total=1)
    t0 = time.perf_counter()

    def fail(exc: BaseException) -> None:
        rec = {"file": str(f), "error": describe_error(str(f), exc)}
        report.failed.append(rec)
        if on_failure:
            on_failure(rec)

    try:
        from .manifest import clean_leftovers

        clean_leftovers(out, min_age=60.0)  # an earlier killed run's half-written files
        session = read(f, format=format, **reader_options)
        done = list(pipe.pipe([session], batch_size=1, on_error=lambda s, exc: fail(exc)))
        for s in done:
            write_outputs(s, out)
            report.processed += 1
            report.outputs.append(str(out))
            report.utterances += len(s.utterances)
            report.precision = s.provenance.get("classify", {}).get("precision")
    except Exception as exc:
        fail(exc)
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


def _write_index(out: Path, report: BatchReport) -> None:
    """index.html over every session in the folder (this run's and earlier ones); never fails the run."""
    try:
        from .report import write_index

        write_index(out, failures=report.failed)
    except Exception as exc:  # the sessions and the batch report are already written
        print(f"alliance-nlp: warning: index.html not written ({type(exc).__name__}: {exc})", file=sys.stderr)


def _built(pipeline: Pipeline | PipelineSpec | None) -> Pipeline:
    if isinstance(pipeline, Pipeline):
        return pipeline
    spec, _ = resolve_spec(pipeline or PipelineSpec())
    return spec.build()


def _analyze_batch(
    files: list[Path],
    out: Path,
    pipeline: Pipeline | PipelineSpec | None,
    *,
    format: str | None,
    reader_options: dict[str, Any],
    batch_size: int,
    progress: bool,
    on_failure: Callable[[dict[str, str]], None] | None,
    workers: int | str,
    engine: str,
    scheduler: str | None,
    force: bool,
    opaque_names: bool = False,
) -> BatchReport:
    from . import engines
    from .manifest import Manifest, RunLock, clean_leftovers, file_sha256, now, read_stamp

    t0 = time.perf_counter()
    # every choice and check that can fail is made before the folder is touched
    info: dict[str, Any] = {}
    if isinstance(pipeline, Pipeline):
        if engine != "local" or (workers not in (1, "1")):
            raise UsageError(
                "workers and the dask engine need the pipeline as names and options "
                "(PipelineSpec), not a built Pipeline"
            )
        spec, steps = None, pipeline.names
        fingerprint = pipeline_fingerprint(pipeline, format, reader_options)
    else:
        spec, info = resolve_spec(pipeline or PipelineSpec())
        steps = list(spec.names)
        fingerprint = spec_fingerprint(spec, format, reader_options)
    report = BatchReport(
        steps=steps,
        total=len(files),
        fingerprint=fingerprint,
        precision=info.get("precision"),
        engine=engine,
        started=now(),
    )
    lock = RunLock(out).acquire()
    manifest = Manifest(out)
    bar = None
    emit_lock = threading.Lock()
    given: dict[str, str] = {}

    def emit(rec: dict[str, Any]) -> None:
        with emit_lock:
            manifest.append(rec)
            if rec["status"] == "done":
                report.processed += 1
                report.outputs.append(str(out / rec["output"]))
                report.utterances += int(rec.get("utterances") or 0)
            else:
                f = {"file": given.get(rec["input"], rec["input"]), "error": rec["error"]}
                report.failed.append(f)
                if on_failure:
                    on_failure(f)
            if bar is not None:
                bar.update(1)

    try:
        clean_leftovers(out)
        manifest.load()
        names = output_names(files)
        used: set[str] = set()
        todo: list[Task] = []
        for f in files:
            key = str(f.resolve())
            given[key] = str(f)
            try:
                sha = file_sha256(f)
            except OSError as exc:
                emit(
                    {
                        "input": key,
                        "output": names[f],
                        "sha256": None,
                        "fingerprint": fingerprint,
                        "status": "failed",
                        "error": f"{f}: cannot read ({exc.strerror or exc})",
                        "time": now(),
                    }
                )
                continue
            if opaque_names:
                base = f"session-{sha[:12]}"
                names[f] = next(n for k in range(len(files) + 1) if (n := base + (f"-{k}" if k else "")) not in used)
            used.add(names[f])
            folder = out / names[f]
            if not force:
                if manifest.is_done(key, sha, fingerprint, folder):
                    report.skipped += 1
                    continue
                stamp = read_stamp(folder)  # committed, but killed before its manifest record
                if (
                    stamp
                    and stamp.get("sha256") == sha
                    and stamp.get("fingerprint") == fingerprint
                    and stamp.get("input") == key
                ):
                    manifest.append(
                        {
                            "input": key,
                            "output": names[f],
                            "sha256": sha,
                            "fingerprint": fingerprint,
                            "status": "done",
                            "error": None,
                            "time": stamp.get("finished", now()),
                            "recovered": True,
                        }
                    )
                    report.skipped += 1
                    continue
            todo.append(Task(key, names[f], sha, fingerprint))
        groups = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        cores = cpu_count()
        n_workers = default_workers(len(todo), batch_size, cores) if str(workers) == "auto" else int(workers)
        if n_workers < 1:
            raise UsageError(f"workers {workers}: must be at least 1 (or auto)")
        if engine == "dask" and str(workers) == "auto":
            n_workers = max(1, min(cores, len(groups)))
        report.workers = n_workers
        threads = max(1, cores // n_workers)
        report.threads_per_worker = threads
        # the reader resolves paths itself; workers get the path as given, records the resolved key
        tasks = [[Task(given[t.input], t.name, t.sha256, t.fingerprint) for t in g] for g in groups]
        ctx = GroupContext(str(out), format, reader_options, extra_stamp={})
        if progress and todo:
            from tqdm import tqdm

            bar = tqdm(
                total=len(files),
                initial=report.skipped,
                desc="sessions",
                unit="session",
                file=sys.stderr,
                smoothing=0.05,
                dynamic_ncols=True,
            )

        def emit_keyed(rec: dict[str, Any]) -> None:
            rec = dict(rec, input=str(Path(rec["input"]).resolve()))
            emit(rec)

        if tasks:
            if engine == "dask":
                assert spec is not None
                engines.run_dask(spec, fingerprint, tasks, ctx, scheduler, n_workers, 1, emit_keyed)
            elif n_workers == 1:
                if isinstance(pipeline, Pipeline):
                    pipe = pipeline
                else:
                    assert spec is not None
                    pipe = spec.build()
                engines.run_inline(pipe, tasks, ctx, emit_keyed)
            else:
                assert spec is not None
                engines.run_processes(spec, tasks, ctx, n_workers, threads, emit_keyed)
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    finally:
        if bar is not None:
            bar.close()
        report.seconds = round(time.perf_counter() - t0, 3)
        if report.processed and report.seconds > 0:
            report.sessions_per_hour = round(3600 * report.processed / report.seconds, 1)
        try:
            write_json_atomic(out / "batch_report.json", report.to_dict())
            manifest.close(compact=True)
            _write_index(out, report)
        finally:
            lock.release()
    return report
