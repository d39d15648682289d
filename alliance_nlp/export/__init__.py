"""Exports of analysed sessions to the tools researchers code in.

- `eaf`: ELAN, one `.eaf` per session (`alliance_nlp.export.eaf`)
- `qdpx`: REFI-QDA project for NVivo, ATLAS.ti, MAXQDA, QualCoder (`alliance_nlp.export.qdpx`)
- `parquet`: utterances and sessions tables for pandas, R (arrow), DuckDB (`alliance_nlp.export.parquet`)
- `txt`: `[hh:mm:ss] Speaker: text` transcripts that NVivo and MAXQDA import as they are
  (`alliance_nlp.export.transcript`)

Every exporter takes analysed sessions paired with their summary (the content of summary.json; computed
with `alliance_nlp.outputs.summarize` when missing) and writes files only: nothing here uses the network.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import AllianceError, InputError
from ..files import atomic_write
from ..session import Session

Analysed = tuple[Session, dict[str, Any]]
Item = Session | tuple[Session, Mapping[str, Any] | None]
FORMATS: tuple[str, ...] = ("eaf", "qdpx", "parquet", "txt")
MARKER_DESCRIPTIONS = {  # one line each, after data/codebook.md section 3
    "goal": "talk that names, checks or confirms the aims or desired outcomes of the work",
    "task": "collaboration on how the work proceeds: agenda, permission, activities, homework",
    "bond": "the emotional bond shown openly: empathy, warmth, trust, appreciation",
    "rupture_withdrawal": "moving away from the other person or from the work (3RS withdrawal)",
    "rupture_confrontation": "moving against the other person or the work (3RS confrontation)",
    "repair": "a move that responds to a rupture or strain in the preceding few turns",
}


def load_analysed(paths: Iterable[str | os.PathLike]) -> list[Analysed]:
    """Analysed sessions from `analyze` results: folders (searched recursively for session.json) or
    session.json files; the summary.json beside each is used when present."""
    out: list[Analysed] = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(p, "no such file or folder")
        files = sorted(p.rglob("session.json")) if p.is_dir() else [p]
        if not files:
            raise InputError(p, "no session.json found (run `alliance-nlp analyze` first)")
        for f in files:
            try:
                session = Session.load(f)
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f, f"not an analysed session: {exc}") from None
            summary_file = f.with_name("summary.json")
            summary = None
            if f.name == "session.json" and summary_file.is_file():
                try:
                    summary = json.loads(summary_file.read_text(encoding="utf-8"))
                except ValueError as exc:
                    raise InputError(summary_file, f"not JSON: {exc}") from None
            out.append(with_summary(session, summary))
    return out


def with_summary(session: Session, summary: Mapping[str, Any] | None = None) -> Analysed:
    """(session, summary), computing the summary when it is not given."""
    if summary is None:
        from ..outputs import summarize

        summary = summarize(session)
    return session, dict(summary)


def normalize(items: Iterable[Item]) -> list[Analysed]:
    """Accept sessions or (session, summary-or-None) pairs."""
    out = []
    for it in items:
        if isinstance(it, Session):
            out.append(with_summary(it))
        else:
            session, summary = it
            out.append(with_summary(session, summary))
    return out


def file_stem(name: str) -> str:
    """A safe file name stem from a session id (ids come from file names, which may hold anything)."""
    stem = re.sub(r"[^\w.-]+", "_", name, flags=re.UNICODE).strip("._")
    return stem[:120] or "session"


def unique_names(items: list[Analysed]) -> list[str]:
    """One distinct name per session: its id, suffixed _2, _3 ... where ids repeat within a batch."""
    seen: dict[str, int] = {}
    names = []
    for session, summary in items:
        base = str(summary.get("session") or session.id or "session")
        k = seen.get(base, 0) + 1
        seen[base] = k
        names.append(base if k == 1 else f"{base}_{k}")
    return names


def export(items: Iterable[Item], to: str, output: str | os.PathLike) -> list[Path]:
    """Export analysed sessions to FORMAT `to` at `output`; returns the files written.

    output: for `eaf` and `txt` a folder (one file per session), or a file path when exporting one
    session; for `qdpx` the project file (a folder gets `alliance-nlp.qdpx` inside); for `parquet` a
    folder receiving `utterances.parquet` and `sessions.parquet`.
    """
    fmt = to.lower().lstrip(".")
    if fmt not in FORMATS:
        raise AllianceError(f"unknown export format {to!r}; known: {', '.join(FORMATS)}")
    analysed = normalize(items)
    if not analysed:
        raise AllianceError("nothing to export: no analysed sessions given")
    if fmt == "eaf":
        from .eaf import write_eaf_files

        return write_eaf_files(analysed, output)
    if fmt == "qdpx":
        from .qdpx import write_qdpx

        return [write_qdpx(analysed, output)]
    if fmt == "parquet":
        from .parquet import write_parquet

        return write_parquet(analysed, output)
    from .transcript import write_transcripts

    return write_transcripts(analysed, output)


def per_session_paths(analysed: list[Analysed], output: str | os.PathLike, suffix: str) -> list[Path]:
    """Target files for one-file-per-session formats: `output` itself for a single session named
    *.suffix, otherwise `output/<session>.suffix`."""
    out = Path(output)
    if len(analysed) == 1 and out.suffix.lower() == suffix:
        return [out]
    return [out / f"{file_stem(name)}{suffix}" for name in unique_names(analysed)]


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write via a temporary file and rename, so a failure never leaves half a file."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return path


def marker_model(session: Session, summary: Mapping[str, Any]) -> str | None:
    """Name of the marker model the session was tagged with, if any."""
    from ..report import classifier_info

    return classifier_info(session, summary).get("model")


__all__ = [
    "FORMATS",
    "MARKER_DESCRIPTIONS",
    "Analysed",
    "export",
    "load_analysed",
    "normalize",
    "with_summary",
    "unique_names",
    "file_stem",
    "marker_model",
]
