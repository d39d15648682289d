"""Plain-text transcripts: "T: ...", "Client: ...", "Dr. Smith: ...", "SPEAKER_00: ...".

Timestamps may come before or after the label ("[00:01:23] T: ...", "T [00:01:23]: ...",
"T: (12:05) ...", "00:01:23 - T: ...", "1:23 T: ..."), or on a line of their own (they then time the
next record). Lines without a label continue the previous speaker; a leading block of "Key: value"
lines (Date:, Session:, Therapist: Dr. X ...) and anything before the first labelled line is kept
as `meta["header"]`. Text with no speaker labels at all gives one record per paragraph (or per line
when the file has no blank lines), speaker None, for diarize to split.

Record.source is the 1-based line number of the record's first line. Reading is linear in the file
size (a 50 MB transcript reads in seconds); see `read_text_transcript` for the size limits.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from ..errors import InputError
from ..session import Session
from ._common import check_lines, load_text, parse_time, role_from_label, shape, split_label, take_leading_time
from .base import (
    MAX_BYTES,
    MAX_LINE_CHARS,
    MAX_RECORDS,
    Record,
    register_reader,
    session_from_records,
    too_many_records,
)

HEADER_KEYS = {
    "date",
    "time",
    "session",
    "session date",
    "session number",
    "session no",
    "session #",
    "title",
    "duration",
    "length",
    "recorded",
    "recording",
    "recorded on",
    "location",
    "transcript",
    "transcribed by",
    "transcriber",
    "transcription",
    "file",
    "filename",
    "id",
    "client id",
    "participants",
    "speakers",
    "notes",
    "note",
    "subject",
    "modality",
    "format",
    "source",
    "language",
    "therapist",
    "client",
    "counselor",
    "counsellor",
    "patient",
    "interviewer",
    "week",
    "visit",
}
_KV_RE = re.compile(r"^\s*([A-Za-z][\w #./-]{0,30}?)\s*:\s*(.*)$")
_DECOR_RE = re.compile(r"^\s*(?:#.*|[-=_*~]{3,}.*|\[[^\]]*\]|\([^)]*\))\s*$")


def _header_block(lines: list[tuple[int, str]]) -> int:
    """Number of leading lines that form a "Key: value" header block (0 if none)."""
    block: list[int] = []
    for i, (_, ln) in enumerate(lines):
        if not ln.strip():
            if block:
                break
            continue
        block.append(i)
    if not block:
        return 0
    keyed = 0
    for i in block:
        ln = lines[i][1]
        if _DECOR_RE.match(ln):
            continue
        m = _KV_RE.match(ln)
        if not m:
            return 0
        key = m.group(1).strip().lower()
        if key in HEADER_KEYS and key not in {
            "therapist",
            "client",
            "counselor",
            "counsellor",
            "patient",
            "interviewer",
        }:
            keyed += 1
        elif key not in HEADER_KEYS:
            return 0
        elif len(m.group(2).split()) > 4 or re.search(r"[?!,]", m.group(2)):
            return 0  # "Therapist: So, how was your week?" is speech, not a header
    return block[-1] + 1 if keyed else 0


def records_from_lines(
    lines: list[tuple[int, str]], path: Path, *, labelled: bool | None = None, max_records: int | None = MAX_RECORDS
) -> tuple[list[Record], dict]:
    """Records from (line number, text) pairs; returns (records, meta)."""
    meta: dict = {}
    nhead = _header_block(lines)
    if nhead:
        meta["header"] = [ln.strip() for _, ln in lines[:nhead] if ln.strip()]
        lines = lines[nhead:]

    # pass 1: parse each line into (lineno, time, label, text)
    parsed: list[tuple[int, float | None, str | None, str, bool]] = []  # (no, t, label, text, blank)
    for no, raw in lines:
        s = raw.strip().replace("\u00a0", " ")
        if not s:
            parsed.append((no, None, None, "", True))
            continue
        t, rest, bad = take_leading_time(s)
        if bad:
            raise InputError(path, f"bad timestamp {shape(bad)}", line=no)
        lab = split_label(rest)
        label, text = None, rest
        if lab:
            label, text, ts = lab
            if ts is not None:
                try:
                    t = parse_time(ts) if t is None else t
                except ValueError:
                    raise InputError(path, f"bad timestamp {shape(ts)}", line=no) from None
            t2, text2, bad = take_leading_time(text, bare=False)
            if bad:
                raise InputError(path, f"bad timestamp {shape(bad)}", line=no)
            if t2 is not None:
                t = t if t is not None else t2
                text = text2
        parsed.append((no, t, label, text.strip(), False))

    counts = Counter(p[2] for p in parsed if p[2])
    accepted = {
        lab
        for lab, n in counts.items()
        if n >= 2 or role_from_label(lab) or re.match(r"(?i)^(speaker|spk)[ _-]?\d+$", lab)
    }
    if labelled is None:
        labelled = sum(counts[lab] for lab in accepted) >= 2
    nonblank = sum(1 for p in parsed if not p[4])
    if labelled and sum(counts[lab] for lab in accepted) >= 0.5 * nonblank:
        # a line-per-turn transcript: a label seen once is a speaker too ("Mother: ..." joining once)
        accepted |= {lab for lab in counts if len(lab.split()) <= 3}

    records: list[Record] = []
    if labelled:
        pending_t: float | None = None
        preamble: list[str] = []
        for no, t, label, text, blank in parsed:
            if blank:
                continue
            if label is not None and label not in accepted:
                text, label = f"{label}: {text}", None  # "Something: ..." inside speech
            if label is None and not text and t is not None:
                pending_t = t  # a timestamp on a line of its own times the next record
                continue
            if label is not None:
                if max_records is not None and len(records) >= max_records:
                    raise too_many_records(path, max_records)
                records.append(
                    Record(
                        speaker=label,
                        text=text,
                        source=no,
                        start=t if t is not None else pending_t,
                        role=role_from_label(label),
                    )
                )
                pending_t = None
            elif records:
                records[-1].add_text(text)
            else:
                preamble.append(text)
        if preamble:
            meta.setdefault("header", []).extend(preamble)
    else:
        has_blank = any(p[4] for p in parsed)
        cur: Record | None = None
        for no, t, label, text, blank in parsed:
            if blank:
                cur = None
                continue
            if label is not None:  # an unaccepted label-like prefix: keep it as text
                text = f"{label}: {text}"
            if not text:
                continue
            if cur is None or not has_blank:
                if max_records is not None and len(records) >= max_records:
                    raise too_many_records(path, max_records)
                cur = Record(speaker=None, text=text, source=no, start=t)
                records.append(cur)
            else:
                cur.add_text(text)
    return records, meta


@register_reader(
    "text",
    extensions=(".txt", ".text"),
    description="plain text with speaker labels (T:, Client:, Dr. Smith:) and optional timestamps",
)
def read_text_transcript(
    path: Path,
    *,
    session_id: str | None = None,
    labelled: bool | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read a plain-text transcript.

    `labelled` forces (True) or refuses (False) speaker-label parsing. Limits, each a LimitError when
    exceeded and None to switch off: `max_bytes` (file size, 64 MiB), `max_line_chars` (one line,
    1,000,000), `max_records` (records, 500,000).
    """
    raw = load_text(path, max_bytes).splitlines()  # (the whole text is not kept: only its lines are used)
    check_lines(path, raw, max_line_chars)
    records, meta = records_from_lines(list(enumerate(raw, start=1)), path, labelled=labelled, max_records=max_records)
    return session_from_records(records, path, "text", session_id=session_id, meta=meta)
