"""CSV / TSV transcripts: one row per utterance.

Columns are found by name (case-insensitive): speaker (speaker, interlocutor, name, who, role),
text (text, utterance, utterance_text, transcript, content), start (start, begin, timestamp, time)
and end (end, stop). A separate role column (role, speaker_role, interlocutor) gives Record.role.
`columns={"text": "...", "speaker": "...", "start": "...", "end": "...", "role": "..."}` overrides;
`delimiter=` overrides the sniffed delimiter. Record.source is the file line the row starts on.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import InputError
from ..session import Session
from ._common import load_text, role_from_label, time_field
from .base import Record, register_reader, session_from_records

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
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        first = text.splitlines()[0]
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


def read_delimited(path: Path, fmt: str, *, delimiter: str | None = None, columns: dict | None = None,
                   session_id: str | None = None) -> Session:
    text = load_text(path)
    skip = 0
    first = text.split("\n", 1)[0].strip()
    if first.lower().startswith("sep=") and len(first) == 5:  # Excel's "sep=;" hint line
        delimiter = delimiter or first[4]
        text, skip = text.split("\n", 1)[1] if "\n" in text else "", 1
        if not text.strip():
            raise InputError(path, "no header row after the sep= line", line=2)
    delim = delimiter or _sniff_delimiter(text)
    rd = _Lines(csv.reader(io.StringIO(text, newline=""), delimiter=delim), skip)
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
                raise InputError(path, f"column {columns[key]!r} not found; columns are: {', '.join(header)}",
                                 field=key)
            return names.index(want)
        for cand in DEFAULTS[key]:
            if cand in names and names.index(cand) not in taken:
                return names.index(cand)
        return None

    taken: set[int] = set()
    col: dict[str, int | None] = {}
    for key in ("text", "speaker", "start", "end", "role"):
        col[key] = find(key, taken)
        if col[key] is not None:
            taken.add(col[key])
    if col["text"] is None:
        raise InputError(path, f"no text column (looked for {', '.join(DEFAULTS['text'])}); columns are: "
                               f"{', '.join(header)}; map one with columns={{'text': ...}}", line=1 + skip)

    records: list[Record] = []
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

        def cell(key: str) -> str | None:
            i = col[key]
            return row[i].strip() if i is not None and i < len(row) else None

        if len(row) < len(header) and col["text"] >= len(row):
            raise InputError(path, f"row has {len(row)} fields, header has {len(header)}",
                             line=start_line, field=header[col["text"]])
        fields = {k: header[i] for k, i in col.items() if i is not None}
        start = time_field(path, cell("start"), line=start_line, field=fields.get("start"))
        end = time_field(path, cell("end"), line=start_line, field=fields.get("end"))
        if start is not None and end is not None and end < start:
            raise InputError(path, f"end {end:g}s is before start {start:g}s", line=start_line,
                             field=fields.get("end"))
        speaker = cell("speaker") or None
        role_val = cell("role")
        role = role_from_label(role_val) if role_val else None
        if role is None and speaker:
            role = role_from_label(speaker)
        records.append(Record(speaker=speaker, text=cell("text") or "", source=start_line, start=start,
                              end=end, role=role))
    return session_from_records(records, path, fmt, session_id=session_id)


@register_reader("csv", extensions=(".csv",), description="CSV with speaker/text/start/end columns")
def read_csv(path: Path, *, delimiter: str | None = None, columns: dict | None = None,
             session_id: str | None = None) -> Session:
    return read_delimited(path, "csv", delimiter=delimiter, columns=columns, session_id=session_id)


@register_reader("tsv", extensions=(".tsv", ".tab"), description="tab-separated speaker/text/start/end columns")
def read_tsv(path: Path, *, delimiter: str | None = "\t", columns: dict | None = None,
             session_id: str | None = None) -> Session:
    return read_delimited(path, "tsv", delimiter=delimiter, columns=columns, session_id=session_id)
