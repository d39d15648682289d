"""Word documents (.docx, via python-docx).

Speaker-labelled paragraphs ("Therapist: ...", "[00:01:23] T: ...") are read like plain text
(see `text`), and transcript tables (columns time / speaker / text, with or without a header row)
give one record per row. Record.source is the 1-based paragraph number, or for tables the 1-based
row number in the table (header included).

The zip is checked before python-docx inflates it (total and ratio of uncompressed sizes: zip bombs), and
the XML is walked here rather than through python-docx's table API, which resolves each vertically merged
cell recursively from the top of its column (RecursionError, and quadratic, on long merges) and repeats a
cell once per spanned column (an unchecked gridSpan of millions). See `read_docx` for the limits.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from ..errors import InputError, LimitError
from ..session import Session
from ._common import check_lines, parse_time, role_from_label
from .base import (
    MAX_BYTES,
    MAX_GRID_SPAN,
    MAX_LINE_CHARS,
    MAX_RECORDS,
    MAX_UNZIPPED_BYTES,
    MAX_ZIP_RATIO,
    Record,
    register_reader,
    session_from_records,
    too_many_records,
)
from .text import records_from_lines

_HEADER = {
    "speaker": {"speaker", "name", "who", "role", "interlocutor", "participant", "person"},
    "text": {"text", "utterance", "transcript", "content", "speech", "dialogue", "verbatim", "what was said"},
    "start": {"time", "start", "timestamp", "begin", "start time", "timecode", "tc"},
    "end": {"end", "stop", "end time"},
}
# (the optional brackets carry their own inner spaces: `\s*[\[(]?\s*` splits a run of spaces n ways)
_TIME_RE = re.compile(r"^\s*(?:[\[(]\s*)?\d{1,3}:\d{1,2}(?::\d{1,2})?(?:[.,]\d+)?(?:\s*[\])])?\s*$")
_RATIO_FLOOR = 2**20  # the zip ratio limit applies above this many uncompressed bytes


_HEADER_MAX = max(len(n) for names in _HEADER.values() for n in names)


def _header_cell(c: str) -> str:
    """c.strip().lower().rstrip(":"), lowering only cells short enough to be a header name (lower() of a
    long non-ASCII cell allocates 12 bytes a character)."""
    s = c.strip().rstrip(":")
    return s.lower() if len(s) <= _HEADER_MAX else s


def _table_records(path: Path, rows: list[list[str]]) -> list[Record]:
    if len(rows) < 2 and not rows:
        return []
    head = [_header_cell(c) for c in rows[0]]
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

        def cell(k, r=r):
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
        records.append(
            Record(speaker=spk, text=text, source=n, start=times["start"], end=times["end"], role=role_from_label(spk))
        )
    return records


def _check_zip(path: Path, max_bytes: int | None, max_unzipped_bytes: int | None, max_zip_ratio: float | None) -> None:
    """Size checks from the zip directory, before anything is inflated (zipfile stops inflating a member
    at its declared size, so declared sizes bound what python-docx can be made to allocate)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(path, f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    if size == 0:
        raise InputError(path, "file is empty")
    if max_bytes is not None and size > max_bytes:
        raise LimitError(
            path,
            f"file is larger than {max_bytes:,} bytes (max_bytes={max_bytes}); pass a larger max_bytes= to read it",
        )
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except Exception as exc:  # noqa: BLE001 - BadZipFile, but also OSError, ValueError, ... on corrupt zips
        raise InputError(path, f"not a readable .docx (Word 2007+) file ({type(exc).__name__})") from None
    if max_unzipped_bytes is not None and total > max_unzipped_bytes:
        raise LimitError(
            path,
            f"unzips to {total:,} bytes, more than max_unzipped_bytes={max_unzipped_bytes}; "
            "pass a larger max_unzipped_bytes= to read it",
        )
    if max_zip_ratio is not None and total > _RATIO_FLOOR and total > max_zip_ratio * size:
        raise LimitError(
            path,
            f"unzips to {total / size:,.0f} times its size (a zip bomb?), more than "
            f"max_zip_ratio={max_zip_ratio}; pass a larger max_zip_ratio= to read it",
        )


def _extract(doc, path: Path, max_grid_span: int | None) -> tuple[list[list[list[str]]], list[str]]:
    """(tables as rows of cell texts, paragraph texts), from the XML python-docx parsed.

    Cells as python-docx's `_Row.cells` gives them: a cell once per grid column it spans, a vertically
    merged continuation cell as the cell it continues (found iteratively here, by grid offset in the row
    above; one with no cell above it is read as an ordinary cell).
    """
    body = doc.element.body
    tables = []
    for ti, tbl in enumerate(body.tbl_lst, start=1):
        rows: list[list[str]] = []
        above: dict[int, tuple[str, int]] = {}  # grid offset -> (text, span) of the cell starting there
        for ri, tr in enumerate(tbl.tr_lst, start=1):
            here: dict[int, tuple[str, int]] = {}
            cells: list[str] = []
            try:
                off = tr.grid_before
            except Exception:  # noqa: BLE001 - python-docx's cells ignore a malformed gridBefore; so do we
                off = 0
            for tc in tr.tc_lst:
                try:
                    span = tc.grid_span
                except ValueError:
                    raise InputError(path, f"table {ti}, row {ri}: a cell's gridSpan is not a whole number") from None
                if max_grid_span is not None and span > max_grid_span:
                    raise LimitError(
                        path,
                        f"table {ti}, row {ri}: a cell spans {span:,} columns (max_grid_span="
                        f"{max_grid_span}); pass a larger max_grid_span= to read it",
                    )
                if tc.vMerge == "continue" and off in above:
                    cell = above[off]
                else:
                    cell = ("\n".join(p.text for p in tc.p_lst), span)
                here[off] = cell
                cells += [cell[0]] * max(cell[1], 0)
                off += span
            rows.append(cells)
            above = here
        tables.append(rows)
    return tables, [p.text for p in body.p_lst]


@register_reader(
    "docx", extensions=(".docx",), description="Word .docx: labelled paragraphs or time/speaker/text tables"
)
def read_docx(
    path: Path,
    *,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_unzipped_bytes: int | None = MAX_UNZIPPED_BYTES,
    max_zip_ratio: float | None = MAX_ZIP_RATIO,
    max_grid_span: int | None = MAX_GRID_SPAN,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read a Word document.

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_unzipped_bytes` (all zip members inflated, 128 MiB), `max_zip_ratio` (inflated / file size, 100,
    checked above 1 MiB inflated), `max_grid_span` (columns one table cell spans, 64), `max_line_chars`
    (one paragraph, 1,000,000), `max_records` (records, 500,000).
    """
    import docx  # python-docx

    _check_zip(path, max_bytes, max_unzipped_bytes, max_zip_ratio)
    try:
        doc = docx.Document(str(path))
    except Exception as exc:  # noqa: BLE001 - zipfile, lxml and python-docx errors; their text is not passed on
        raise InputError(path, f"not a readable .docx (Word 2007+) file ({type(exc).__name__})") from None
    try:
        tables, paras = _extract(doc, path, max_grid_span)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - python-docx parses attributes lazily (ValueError, InvalidXmlError)
        raise InputError(path, f"malformed .docx content ({type(exc).__name__})") from None
    check_lines(path, paras, max_line_chars, what="paragraph")
    records: list[Record] = []
    meta: dict = {}
    for ti, rows in enumerate(tables, start=1):
        if max_line_chars is not None and any(len(c) > max_line_chars for r in rows for c in r):
            raise LimitError(
                path,
                f"table {ti}: a cell is longer than {max_line_chars:,} characters (max_line_chars="
                f"{max_line_chars}); pass a larger max_line_chars= to read it",
            )
        rs = _table_records(path, rows)
        if len(rs) >= 2:
            records += rs
            if max_records is not None and len(records) > max_records:
                raise too_many_records(path, max_records, "table rows")
    if records:
        meta["layout"] = "table"
        nonblank = [p for p in paras if p.strip()]
        if nonblank:
            meta["header"] = nonblank[:20]
    else:
        records, meta = records_from_lines(list(enumerate(paras, start=1)), path, max_records=max_records)
        meta["layout"] = "paragraphs"
    return session_from_records(records, path, "docx", session_id=session_id, meta=meta)
