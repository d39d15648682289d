"""Otter.ai text export: a "Name  0:12" header line, then the paragraph(s) that speaker said.

    Dr. Rivera  0:03
    Good to see you again. How has the week been?

    Sam  0:09
    Honestly, kind of rough.

A trailing "Transcribed by https://otter.ai" line is dropped. Record.source is the 1-based line
number of the header line.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from ..session import Session
from ._common import check_lines, load_text, parse_time, role_from_label, shape
from .base import (
    MAX_BYTES,
    MAX_LINE_CHARS,
    MAX_RECORDS,
    Record,
    register_reader,
    session_from_records,
    too_many_records,
)

_HEAD_RE = re.compile(r"^(?P<name>[^\W\d_][^\t:]{0,48}?)\s{1,}(?P<t>\d{1,3}:\d{2}(?::\d{2})?)\s*$")
# The time token's first colon is matched by `[\w.]*:` (no colon in the class): `[\w:.]*:[\w:.]*` splits a
# run of n colons n ways and backtracks quadratically when the line does not end there.
_BADHEAD_RE = re.compile(r"^(?P<name>[^\W\d_][^\t:]{0,48}?)\s{2,}(?P<t>\d[\w.]*:[\w:.]*)\s*$")
_FOOTER_RE = re.compile(r"(?i)^\s*transcribed by\s+https?://\S*otter\.ai")


def sniff_otter(path: Path, head: str | None) -> bool:
    if not head:
        return False
    lines = head.splitlines()
    hits = 0
    for i, ln in enumerate(lines[:-1]):
        if _HEAD_RE.match(ln.strip()) and lines[i + 1].strip() and not _HEAD_RE.match(lines[i + 1].strip()):
            hits += 1
    return hits >= 2 or "otter.ai" in head.lower() and hits >= 1


@register_reader(
    "otter",
    extensions=(".txt",),
    sniff=sniff_otter,
    description="Otter.ai text export ('Name  0:12' lines followed by paragraphs)",
)
def read_otter(
    path: Path,
    *,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read an Otter.ai text export.

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_line_chars` (one line, 1,000,000), `max_records` (speaker paragraphs, 500,000).
    """
    text = load_text(path, max_bytes)
    lines = text.splitlines()
    check_lines(path, lines, max_line_chars)
    records: list[Record] = []
    header: list[str] = []
    for no, raw in enumerate(lines, start=1):
        s = raw.strip()
        if not s or _FOOTER_RE.match(s):
            continue
        m = _HEAD_RE.match(s)
        if m:
            try:
                t = parse_time(m.group("t"))
            except ValueError as exc:
                raise InputError(path, str(exc), line=no) from None
            name = m.group("name").strip()
            if max_records is not None and len(records) >= max_records:
                raise too_many_records(path, max_records)
            records.append(Record(speaker=name, text="", source=no, start=t, role=role_from_label(name)))
            continue
        bad = _BADHEAD_RE.match(s)
        if bad and len(s.split()) <= 6:
            raise InputError(path, f"bad timestamp {shape(bad.group('t'))}", line=no)
        if records:
            records[-1].add_text(s)
        else:
            header.append(s)
    for a, b in zip(records, records[1:]):
        a.end = b.start
    meta = {"header": header} if header else {}
    return session_from_records(records, path, "otter", session_id=session_id, meta=meta)
