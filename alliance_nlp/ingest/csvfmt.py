"""CSV / TSV transcripts: one row per utterance.

Columns are found by name (case-insensitive): speaker (speaker, interlocutor, name, who, role),
text (text, utterance, utterance_text, transcript, content), start (start, begin, timestamp, time)
and end (end, stop). A separate role column (role, speaker_role, interlocutor) gives Record.role.
`columns={"text": "...", "speaker": "...", "start": "...", "end": "...", "role": "..."}` overrides;
`delimiter=` overrides the sniffed delimiter. Record.source is the file line the row starts on.
Cells are limited to 131,072 characters by Python's csv module; see `read_csv` for the other limits.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, LimitError
from ..session import Session
from ._common import load_text, role_from_label, shape_names, time_field
from .base import (
    MAX_BYTES,
    MAX_LINE_CHARS,
    MAX_RECORDS,
    Record,
    register_reader,
    session_from_records,
    too_many_records,
)

# csv.Sniffer's quote-guessing regexes are quadratic in the sample (16 KB of '",' take seconds), so it
# sees at most the first 20 lines within this many characters.
SNIFF_CHARS = 8192
_EOL_RE = re.compile(r"\r\n|\r|\n")


def _lines(text: str, path: Path, max_line_chars: int | None, skip: int) -> Iterator[str]:
    """The lines io.StringIO(text, newline="") gives csv.reader (ends kept), without StringIO's copy of the
    text at 4 bytes per character; a line over `max_line_chars` is a LimitError."""
    pos = 0
    for no, m in enumerate(_EOL_RE.finditer(text), start=1 + skip):
        end = m.end()
        if max_line_chars is not None and m.start() - pos > max_line_chars:
            raise _long_line(path, max_line_chars, no)
        yield text[pos:end]
        pos = end
    if pos < len(text):
        if max_line_chars is not None and len(text) - pos > max_line_chars:
            raise _long_line(path, max_line_chars, text.count("\n", 0, pos) + 1 + skip)
        yield text[pos:]


def _long_line(path: Path, max_line_chars: int, line: int) -> LimitError:
    return LimitError(
        path,
        f"line is longer than {max_line_chars:,} characters (max_line_chars={max_line_chars}); "
        "pass a larger max_line_chars= to read it",
        line=line,
    )


DEFAULTS: dict[str, tuple[str, ...]] = {
    "speaker": ("speaker", "speaker_id", "speaker_name", "interlocutor", "name", "who", "participant", "role"),
    "text": ("text", "utterance", "utterance_text", "transcript", "content", "sentence", "message", "turn_text"),
    "start": ("start", "start_time", "begin", "begin_time", "timestamp", "time", "onset", "start_s"),
    "end": ("end", "end_time", "stop", "offset", "end_s"),
    "role": ("role", "speaker_role", "interlocutor"),
}


def _norm(h: str) -> str:
    return h.strip().strip('"').lower().replace(" ", "_").replace("-", "_")


def _sniff_delimiter(text: str) -> str:
    head = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in head:
        head = head[: head.rindex("\n")]  # whole lines only
    sample = "\n".join(head.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        first = head.splitlines()[0] if head.strip() else ""
        return max(",\t;|", key=first.count)


class _Lines:
    """csv.reader with line numbers offset by lines skipped before it."""

    def __init__(self, rd, skip: int):
        self.rd, self.skip = rd, skip

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.rd)

    @property
    def line_num(self) -> int:
        return self.rd.line_num + self.skip


def read_delimited(
    path: Path,
    fmt: str,
    *,
    delimiter: str | None = None,
    columns: dict | None = None,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    text = load_text(path, max_bytes)
    skip = 0
    nl = text.find("\n")
    first = (text if nl < 0 else text[:nl]).strip()
    if len(first) == 5 and first[:4].lower() == "sep=":  # Excel's "sep=;" hint line
        delimiter = delimiter or first[4]
        text, skip = text[nl + 1 :] if nl >= 0 else "", 1
        if not text.strip():
            raise InputError(path, "no header row after the sep= line", line=2)
    delim = delimiter or _sniff_delimiter(text)
    rd = _Lines(csv.reader(_lines(text, path, max_line_chars, skip), delimiter=delim), skip)
    try:
        header = next(rd)
    except csv.Error as exc:
        raise InputError(path, f"bad CSV header: {exc}", line=1 + skip) from None
    names = [_norm(h) for h in header]
    if not any(names):
        raise InputError(path, "no header row", line=1 + skip)

    def find(key: str, taken: set[int]) -> int | None:
        if columns and key in columns:
            want = _norm(columns[key])
            if want not in names:
                raise InputError(
                    path, f"column {columns[key]!r} not found; columns are: {shape_names(header)}", field=key
                )
            return names.index(want)
        for cand in DEFAULTS[key]:
            if cand in names and names.index(cand) not in taken:
                return names.index(cand)
        return None

    taken: set[int] = set()
    col: dict[str, int | None] = {}
    for key in ("text", "speaker", "start", "end", "role"):
        col[key] = found = find(key, taken)
        if found is not None:
            taken.add(found)
    if col["text"] is None:
        raise InputError(
            path,
            f"no text column (looked for {', '.join(DEFAULTS['text'])}); columns are: "
            f"{shape_names(header)}; map one with columns={{'text': ...}}",
            line=1 + skip,
        )

    records: list[Record] = []
    fields = {k: header[i] for k, i in col.items() if i is not None}
    line = rd.line_num + 1
    while True:
        try:
            row = next(rd)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(path, f"bad CSV row: {exc}", line=line) from None
        start_line, line = line, rd.line_num + 1
        if not any(c.strip() for c in row):
            continue

        def cell(key: str, row: list[str] = row) -> str | None:
            i = col[key]
            return row[i].strip() if i is not None and i < len(row) else None

        if len(row) < len(header) and col["text"] >= len(row):
            raise InputError(
                path, f"row has {len(row)} fields, header has {len(header)}", line=start_line, field=header[col["text"]]
            )
        if max_records is not None and len(records) >= max_records:
            raise too_many_records(path, max_records, "rows")
        start = time_field(path, cell("start"), line=start_line, field=fields.get("start"))
        end = time_field(path, cell("end"), line=start_line, field=fields.get("end"))
        if start is not None and end is not None and end < start:
            raise InputError(path, f"end {end:g}s is before start {start:g}s", line=start_line, field=fields.get("end"))
        speaker = cell("speaker") or None
        role_val = cell("role")
        role = role_from_label(role_val) if role_val else None
        if role is None and speaker:
            role = role_from_label(speaker)
        records.append(
            Record(speaker=speaker, text=cell("text") or "", source=start_line, start=start, end=end, role=role)
        )
    return session_from_records(records, path, fmt, session_id=session_id)


@register_reader("csv", extensions=(".csv",), description="CSV with speaker/text/start/end columns")
def read_csv(
    path: Path,
    *,
    delimiter: str | None = None,
    columns: dict | None = None,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read a CSV transcript (`delimiter=` overrides sniffing, `columns=` maps fields to columns).

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_line_chars` (one line, 1,000,000), `max_records` (rows, 500,000).
    """
    return read_delimited(
        path,
        "csv",
        delimiter=delimiter,
        columns=columns,
        session_id=session_id,
        max_bytes=max_bytes,
        max_line_chars=max_line_chars,
        max_records=max_records,
    )


@register_reader("tsv", extensions=(".tsv", ".tab"), description="tab-separated speaker/text/start/end columns")
def read_tsv(
    path: Path,
    *,
    delimiter: str | None = "\t",
    columns: dict | None = None,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read a tab-separated transcript (options as for `read_csv`).

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_line_chars` (one line, 1,000,000), `max_records` (rows, 500,000).
    """
    return read_delimited(
        path,
        "tsv",
        delimiter=delimiter,
        columns=columns,
        session_id=session_id,
        max_bytes=max_bytes,
        max_line_chars=max_line_chars,
        max_records=max_records,
    )
