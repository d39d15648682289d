"""Word documents (.docx, via python-docx).

Speaker-labelled paragraphs ("Therapist: ...", "[00:01:23] T: ...") are read like plain text
(see `text`), and transcript tables (columns time / speaker / text, with or without a header row)
give one record per row. Record.source is the 1-based paragraph number, or for tables the 1-based
row number in the table (header included).
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from ..errors import InputError
from ..session import Session
from ._common import parse_time, role_from_label
from .base import Record, register_reader, session_from_records
from .text import records_from_lines

_HEADER = {
    "speaker": {"speaker", "name", "who", "role", "interlocutor", "participant", "person"},
    "text": {"text", "utterance", "transcript", "content", "speech", "dialogue", "verbatim", "what was said"},
    "start": {"time", "start", "timestamp", "begin", "start time", "timecode", "tc"},
    "end": {"end", "stop", "end time"},
}
_TIME_RE = re.compile(r"^\s*[\[(]?\s*\d{1,3}:\d{1,2}(?::\d{1,2})?(?:[.,]\d+)?\s*[\])]?\s*$")


def _table_records(path: Path, rows: list[list[str]]) -> list[Record]:
    if len(rows) < 2 and not rows:
        return []
    head = [c.strip().lower().rstrip(":") for c in rows[0]]
    col: dict[str, int] = {}
    for key, names in _HEADER.items():
        for i, h in enumerate(head):
            if h in names and i not in col.values():
                col[key] = i
                break
    first = 1 if "text" in col else 0
    if "text" not in col:  # no header row: guess columns from the cells
        ncol = max(len(r) for r in rows)
        body = [r for r in rows if any(c.strip() for c in r)]
        if ncol < 2 or not body:
            return []
        timeish = [sum(bool(_TIME_RE.match(r[i])) for r in body if i < len(r)) for i in range(ncol)]
        lengths = [sum(len(r[i]) for r in body if i < len(r)) for i in range(ncol)]
        distinct = [len({r[i].strip() for r in body if i < len(r)}) for i in range(ncol)]
        rest = list(range(ncol))
        t = max(rest, key=lambda i: timeish[i])
        if timeish[t] >= len(body) / 2:
            col["start"] = t
            rest.remove(t)
        col["text"] = max(rest, key=lambda i: lengths[i])
        rest.remove(col["text"])
        if rest:
            col["speaker"] = min(rest, key=lambda i: distinct[i])
    records = []
    for n, r in enumerate(rows[first:], start=first + 1):
        def cell(k):
            i = col.get(k)
            return r[i].strip() if i is not None and i < len(r) else ""
        text = cell("text")
        if not text:
            continue
        times = {}
        for k in ("start", "end"):
            v = cell(k).strip("[]() ")
            try:
                times[k] = parse_time(v) if v else None
            except ValueError as exc:
                raise InputError(path, f"table row {n}: {exc}", field=rows[0][col[k]] if first else k) from None
        spk = cell("speaker").rstrip(":") or None
        records.append(Record(speaker=spk, text=text, source=n, start=times["start"], end=times["end"],
                              role=role_from_label(spk)))
    return records


@register_reader("docx", extensions=(".docx",), description="Word .docx: labelled paragraphs or time/speaker/text tables")
def read_docx(path: Path, *, session_id: str | None = None) -> Session:
    import docx  # python-docx

    if path.stat().st_size == 0:
        raise InputError(path, "file is empty")
    try:
        doc = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputError(path, f"not a readable .docx (Word 2007+) file: {exc}") from None
    except Exception as exc:  # python-docx raises its own PackageNotFoundError etc.
        raise InputError(path, f"not a readable .docx (Word 2007+) file: {type(exc).__name__}: {exc}") from None
    records: list[Record] = []
    meta: dict = {}
    for table in doc.tables:
        rows = [[c.text for c in row.cells] for row in table.rows]
        rs = _table_records(path, rows)
        if len(rs) >= 2:
            records += rs
    if records:
        meta["layout"] = "table"
        paras = [p.text for p in doc.paragraphs if p.text.strip()]
        if paras:
            meta["header"] = paras[:20]
    else:
        lines = [(i, p.text) for i, p in enumerate(doc.paragraphs, start=1)]
        records, meta = records_from_lines(lines, path)
        meta["layout"] = "paragraphs"
    return session_from_records(records, path, "docx", session_id=session_id, meta=meta)
