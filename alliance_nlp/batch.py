"""`analyze`: transcripts in, one output folder per session out, through one batch path.

Files are read lazily and streamed through `Pipeline.pipe`, so the classifier encodes the utterances
of several sessions in shared batches. A file that cannot be read, or a session a component fails
on, is reported and skipped; the rest of the batch goes on, and `batch_report.json` lists both.

    from alliance_nlp import analyze
    report = analyze(["sessions/"], "results/")
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import AllianceError, InputError
from .files import write_json_atomic
from .outputs import write_outputs
from .pipeline import Pipeline
from .session import Session

TRANSCRIPT_SUFFIXES = {".txt", ".csv", ".tsv", ".json", ".jsonl", ".vtt", ".srt", ".rttm", ".docx", ".cha"}


@dataclass
class BatchReport:
    """What a run did: sessions written, and each failure as {file, error} (one line, no traceback)."""
    processed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand_inputs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given; folders expanded to the transcripts inside (sorted, recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TRANSCRIPT_SUFFIXES
                          and not f.name.startswith(".") and not f.name.endswith("_words.json"))
        else:
            out.append(p)
    return out


def output_names(files: Sequence[Path]) -> dict[Path, str]:
    """A folder name per input: the file stem, with the extension added where two stems collide."""
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    return {f: f.stem if stems[f.stem] == 1 else f"{f.stem}_{f.suffix.lstrip('.')}" for f in files}


def describe_error(where: str, exc: BaseException) -> str:
    """One line: our errors as they are (they name the file), anything else as an internal error."""
    if isinstance(exc, AllianceError):
        msg = str(exc)
        return msg if msg.startswith(where) else f"{where}: {msg}"
    return f"{where}: internal error ({type(exc).__name__}: {exc}); please report it"


def analyze(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, pipeline: Pipeline | None = None, *,
            format: str | None = None, reader_options: dict[str, Any] | None = None, batch_size: int = 8,
            progress: bool = False, on_failure: Callable[[dict[str, str]], None] | None = None) -> BatchReport:
    """Analyse transcripts and write session.json, utterances.csv and summary.json per session.

    One file given (not a folder): its outputs go straight into `output`. Otherwise each session gets
    a subfolder named after its file, and `output/batch_report.json` records the run."""
    from .ingest import read

    files = expand_inputs(inputs)
    if not files:
        raise InputError(", ".join(map(str, inputs)) or "<no input>", "no transcript files found")
    pipe = pipeline or Pipeline.from_names()
    out = Path(output)
    single = len(files) == 1 and not Path(inputs[0]).is_dir()
    names = output_names(files)
    report = BatchReport(steps=pipe.names)
    by_path: dict[str, Path] = {}

    def fail(where: str, exc: BaseException) -> None:
        rec = {"file": where, "error": describe_error(where, exc)}
        report.failed.append(rec)
        if on_failure:
            on_failure(rec)

    def sessions() -> Iterator[Session]:
        for f in files:
            try:
                s = read(f, format=format, **(reader_options or {}))
            except Exception as exc:   # a broken file must not lose the rest of a batch
                fail(str(f), exc)
                continue
            by_path[s.source_path or str(f)] = f
            yield s

    bar = None
    if progress and not single:
        from tqdm import tqdm
        bar = tqdm(total=len(files), desc="sessions", unit="session", file=sys.stderr)
    for session in pipe.pipe(sessions(), batch_size=batch_size,
                             on_error=lambda s, exc: fail(s.source_path or s.id, exc)):
        src = by_path.get(session.source_path or "", Path(session.id))
        target = out if single else out / names.get(src, session.id)
        try:
            write_outputs(session, target)
        except Exception as exc:
            fail(str(src), exc)
            continue
        report.processed += 1
        report.outputs.append(str(target))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.update(len(files) - bar.n)
        bar.close()
    if not single:
        write_json_atomic(out / "batch_report.json", report.to_dict())
    return report
