"""Where the per-session work of a batch runs: in this process, in local worker processes, or on a Dask
cluster. Every engine runs the same function (`process_group`) on groups of inputs: read, run the
pipeline (classifier batches shared within the group), write each session atomically, and return one
manifest record per input. The caller (`alliance_nlp.batch`) owns the lock, the manifest and the report.

Results do not depend on the engine, the number of workers or how inputs were grouped: the default
classifier runtime computes an utterance's vector from that utterance alone and the context layer per
session on one BLAS thread (see `alliance_nlp.onnx_encoder`). (The torch runtime pads batches, so its
results can differ in the last bits between groupings.)

A worker builds the pipeline once (from a `PipelineSpec`: component names and options, which pickle
cheaply) and keeps it for every group it is given.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AllianceError, PipelineError
from .pipeline import DEFAULT_STEPS, Pipeline, check_contracts

Record = dict[str, Any]


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline by name and options, built where it runs (each worker loads the model once)."""

    names: tuple[str, ...] = DEFAULT_STEPS
    config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> None:
        check_contracts(list(self.names))
        unused = set(self.config) - set(self.names)
        if unused:
            raise PipelineError(f"options given for components not in the pipeline: {', '.join(sorted(unused))}")

    def build(self) -> Pipeline:
        return Pipeline.from_names(list(self.names), {k: dict(v) for k, v in self.config.items()})


@dataclass(frozen=True)
class Task:
    """One input: its file, its output folder name, and what its outputs will be stamped with."""

    input: str
    name: str
    sha256: str
    fingerprint: str


@dataclass
class GroupContext:
    """What a worker needs besides the pipeline: where to write and how to read."""

    output: str
    format: str | None = None
    reader_options: dict[str, Any] = field(default_factory=dict)
    extra_stamp: dict[str, Any] = field(default_factory=dict)


def describe_error(where: str, exc: BaseException) -> str:
    """One line: our errors as they are (they name the file), anything else as an internal error."""
    if isinstance(exc, AllianceError):
        msg = str(exc)
        return msg if msg.startswith(where) else f"{where}: {msg}"
    return f"{where}: internal error ({type(exc).__name__}: {exc}); please report it"


def _record(task: Task, status: str, started: float, error: str | None = None, utterances: int | None = None) -> Record:
    from .manifest import now

    return {
        "input": task.input,
        "output": task.name,
        "sha256": task.sha256,
        "fingerprint": task.fingerprint,
        "status": status,
        "error": error,
        "time": now(),
        "seconds": round(time.perf_counter() - started, 3),
        "utterances": utterances,
        "worker": f"{os.uname().nodename if hasattr(os, 'uname') else ''}:{os.getpid()}",
        "worker_peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float | None:
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB
    except Exception:
        return None


def read_group(tasks: Sequence[Task], ctx: GroupContext) -> tuple[list[tuple[Task, Any]], list[Record]]:
    """(task, Session) for the inputs that read, and a failure record for each that did not."""
    from .ingest import read

    ok, failed = [], []
    for t in tasks:
        started = time.perf_counter()
        try:
            ok.append((t, read(t.input, format=ctx.format, **ctx.reader_options)))
        except Exception as exc:  # a broken file must not lose the rest of a batch
            failed.append(_record(t, "failed", started, describe_error(t.input, exc)))
    return ok, failed


def infer_group(pipeline: Pipeline, items: list[tuple[Task, Any]]) -> tuple[list[tuple[Task, Any]], list[Record]]:
    """Run the pipeline over the group's sessions (shared classifier batches); a session a component
    fails on is dropped with a failure record, the rest go on."""
    failed: list[Record] = []
    by_id = {id(s): t for t, s in items}
    started = time.perf_counter()

    def on_error(s: Any, exc: Exception) -> None:
        t = by_id[id(s)]
        failed.append(_record(t, "failed", started, describe_error(t.input, exc)))

    done = list(pipeline.pipe([s for _, s in items], batch_size=max(1, len(items)), on_error=on_error))
    return [(by_id[id(s)], s) for s in done], failed


def write_session(task: Task, session: Any, ctx: GroupContext, started: float) -> Record:
    from .manifest import session_folder
    from .outputs import write_outputs

    stamp = {"input": task.input, "sha256": task.sha256, "fingerprint": task.fingerprint, **ctx.extra_stamp}
    try:
        with session_folder(Path(ctx.output), task.name, stamp) as tmp:
            write_outputs(session, tmp)
    except Exception as exc:
        return _record(task, "failed", started, describe_error(task.input, exc))
    return _record(task, "done", started, utterances=len(session.utterances))


def process_group(pipeline: Pipeline, tasks: Sequence[Task], ctx: GroupContext) -> list[Record]:
    """The whole per-input work for a group: read, analyse, write. Never raises for one input's fault."""
    started = time.perf_counter()
    items, failed = read_group(tasks, ctx)
    done, failed2 = infer_group(pipeline, items) if items else ([], [])
    return failed + failed2 + [write_session(t, s, ctx, started) for t, s in done]


# ---- in this process: reading and writing overlapped with inference --------------------------------
def _write_and_emit(
    task: Task, session: Any, ctx: GroupContext, started: float, emit: Callable[[Record], None]
) -> None:
    emit(write_session(task, session, ctx, started))


def run_inline(
    pipeline: Pipeline, groups: Iterable[Sequence[Task]], ctx: GroupContext, emit: Callable[[Record], None]
) -> None:
    """One process: a reader thread reads the next groups and a writer thread writes finished sessions
    while this thread runs the pipeline (ONNX Runtime and numpy release the GIL while they compute)."""
    from concurrent.futures import ThreadPoolExecutor

    todo: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    END = object()

    def reader() -> None:
        try:
            for g in groups:
                if stop.is_set():
                    break
                todo.put(read_group(g, ctx))
        except BaseException as exc:  # surfaced in the main thread
            todo.put(exc)
        finally:
            todo.put(END)

    th = threading.Thread(target=reader, name="alliance-reader", daemon=True)
    th.start()
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alliance-writer")
    pending: list[Any] = []
    try:
        while True:
            item = todo.get()
            if item is END:
                break
            if isinstance(item, BaseException):
                raise item
            items, failed = item
            for r in failed:
                emit(r)
            started = time.perf_counter()
            done, failed2 = infer_group(pipeline, items) if items else ([], [])
            for r in failed2:
                emit(r)
            for t, s in done:
                pending.append(writer.submit(_write_and_emit, t, s, ctx, started, emit))
            still = []
            for f in pending:
                if f.done():
                    f.result()  # a writer's exception surfaces here
                else:
                    still.append(f)
            pending = still
        for f in pending:
            f.result()
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock the reader
                todo.get_nowait()
        writer.shutdown(wait=True, cancel_futures=True)


# ---- local worker processes ----------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _die_with_parent() -> None:
    """Linux: this worker gets SIGKILL when the process that started it dies (so a killed run leaves no
    worker writing into a folder that a rerun then takes over)."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_init(spec: PipelineSpec, threads: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    _die_with_parent()
    _WORKER.update(spec=spec, threads=threads, pipeline=None)


def _worker_pipeline() -> Pipeline:
    if _WORKER.get("pipeline") is None:
        _WORKER["pipeline"] = with_threads(_WORKER["spec"], _WORKER["threads"]).build()
    return _WORKER["pipeline"]


def _worker_run(tasks: Sequence[Task], ctx: GroupContext) -> list[Record]:
    try:
        pipeline = _worker_pipeline()
    except Exception as exc:  # the model cannot load: every input of the run would fail the same way
        return [{"fatal": describe_error("pipeline", exc) if not isinstance(exc, AllianceError) else str(exc)}]
    return process_group(pipeline, tasks, ctx)


def with_threads(spec: PipelineSpec, threads: int | None) -> PipelineSpec:
    """The spec with the classifier's intra-op threads set (when it has a classify step)."""
    if not threads or "classify" not in spec.names:
        return spec
    cfg = {k: dict(v) for k, v in spec.config.items()}
    cfg.setdefault("classify", {}).setdefault("threads", threads)
    return PipelineSpec(spec.names, cfg)


# Only the classifier's own threads are set for workers. numpy's BLAS keeps its default: its results
# depend (in the last bits) on the thread count it starts with, and the aggregate and diarize stages
# must give a worker the same numbers as a sequential run on the same machine.
THREAD_VARS = ("ALLIANCE_NLP_THREADS",)


@contextlib.contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """Environment for spawned workers: the classifier runs `threads` intra-op threads."""
    old = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class FatalWorkerError(PipelineError):
    """A worker could not build the pipeline (the model or mapping cannot load)."""


def run_processes(
    spec: PipelineSpec,
    groups: Sequence[Sequence[Task]],
    ctx: GroupContext,
    workers: int,
    threads: int,
    emit: Callable[[Record], None],
) -> None:
    """`workers` spawned processes, each loading the pipeline once; groups are handed out as workers
    free up (so long and short sessions balance)."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with thread_env(threads):
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(spec, threads)
        )
        it = iter(groups)
        running: set[Any] = set()
        try:
            for g in it:  # keep two groups per worker in flight: one running, one queued
                running.add(pool.submit(_worker_run, g, ctx))
                if len(running) >= 2 * workers:
                    break
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    for r in f.result():
                        if "fatal" in r:
                            raise FatalWorkerError(r["fatal"])
                        emit(r)
                    nxt = next(it, None)
                    if nxt is not None:
                        running.add(pool.submit(_worker_run, nxt, ctx))
        except BaseException:
            for f in running:
                f.cancel()
            _terminate(pool)
            raise
        pool.shutdown(wait=True)


def _terminate(pool: Any) -> None:
    """Stop a process pool now (Ctrl-C, a fatal error): its workers are killed, not waited for."""
    procs = list(getattr(pool, "_processes", {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=5)


# ---- Dask ------------------------------------------------------------------------------------------
_DASK_PIPELINES: dict[str, Pipeline] = {}


def dask_run(
    spec: PipelineSpec, key: str, threads: int | None, tasks: Sequence[Task], ctx: GroupContext
) -> list[Record]:
    """A Dask task: the worker process keeps one pipeline per spec (one model load per worker)."""
    pipe = _DASK_PIPELINES.get(key)
    if pipe is None:
        try:
            pipe = _DASK_PIPELINES[key] = with_threads(spec, threads).build()
        except Exception as exc:
            return [{"fatal": str(exc) if isinstance(exc, AllianceError) else describe_error("pipeline", exc)}]
    return process_group(pipe, tasks, ctx)


def run_dask(
    spec: PipelineSpec,
    key: str,
    groups: Sequence[Sequence[Task]],
    ctx: GroupContext,
    scheduler: str | None,
    workers: int,
    threads: int | None,
    emit: Callable[[Record], None],
) -> None:
    """On a Dask cluster at `scheduler` (host:port or a scheduler file), or on a LocalCluster of
    `workers` single-threaded worker processes. Inputs and the output folder must be on a filesystem
    every worker sees (a cluster's shared scratch)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise PipelineError("--engine dask needs dask.distributed: pip install 'alliance-nlp[cluster]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler_file=scheduler) if scheduler.endswith(".json") else Client(scheduler)
    else:
        with thread_env(threads or 1):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    futures: list[Any] = []
    try:
        futures = [client.submit(dask_run, spec, key, threads, list(g), ctx, pure=False) for g in groups]
        for f in as_completed(futures):
            for r in f.result():
                if "fatal" in r:
                    raise FatalWorkerError(r["fatal"])
                emit(r)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(futures)
        raise
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
