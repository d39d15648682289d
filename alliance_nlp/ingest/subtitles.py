"""Subtitle transcripts: WebVTT (via webvtt-py) and SRT (own small parser).

Speakers come from voice tags (`<v Jane Doe>...</v>`, as Teams writes them) or from a "Name:"
prefix on the cue text (as Zoom writes them); a cue with two voice-tagged lines gives two records.
Times are read in milliseconds (webvtt-py's seconds accessors truncate). Record.source is the
1-based cue index (cue number in file order). See `read_vtt` / `read_srt` for the size limits.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from ..errors import InputError
from ..session import Session
from ._common import check_lines, load_text, role_from_label, split_label, strip_tags
from .base import (
    MAX_BYTES,
    MAX_LINE_CHARS,
    MAX_RECORDS,
    Record,
    register_reader,
    session_from_records,
    too_many_records,
)

_VTT_TIME = r"(?:\d{1,10}:)?\d{2}:\d{2}\.\d{3}"
_VTT_CUE_RE = re.compile(rf"^\s*({_VTT_TIME})\s+-->\s+({_VTT_TIME})(?:\s+.*)?$")
_SRT_TIME = r"(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_SRT_CUE_RE = re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}(?:\s+.*)?$")
# "<v Name>": the name starts at the first non-space ("<v   >" keeps one space as its name, as `\s+([^>]+)`
# did). Written so that `\s+` and the name cannot both match the same spaces: that backtracks quadratically
# on "<v" followed by a long run of spaces and no ">".
_VOICE_RE = re.compile(r"^\s*<v(?:\.[\w-]+)*(?:\s+([^>\s][^>]*)|\s*(\s))>(.*)$")


def _ms(parts: tuple[str, ...]) -> float:
    h, m, s, frac = parts
    if int(m) >= 60 or int(s) >= 60:
        raise ValueError
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def _records_from_cue(lines: list[str], start: float, end: float, idx: int, raw: dict[int, str]) -> list[Record]:
    """Split a cue's lines into (speaker, text) records: voice tags, then "Name:" prefixes."""
    out: list[Record] = []
    for ln in lines:
        m = _VOICE_RE.match(ln)
        if m:
            spk, text = (m.group(1) or m.group(2)).strip(), strip_tags(m.group(3)).strip()
            if out and out[-1].speaker == spk:
                out[-1].add_text(text)
            else:
                out.append(Record(speaker=spk, text=text, source=idx, start=start, end=end, role=role_from_label(spk)))
            continue
        text = strip_tags(ln).strip()
        if not text:
            continue
        lab = split_label(text)
        if lab:
            spk, t, _ = lab
            r = Record(speaker=spk, text=t, source=idx, start=start, end=end, role=role_from_label(spk))
            raw[id(r)] = text  # id(record) -> cue text, for speakers taken from a "Name:" prefix
            out.append(r)
        elif out:
            out[-1].add_text(text)
        else:
            out.append(Record(speaker=None, text=text, source=idx, start=start, end=end))
    return out


def _inherit_speakers(records: list[Record], raw: dict[int, str]) -> list[Record]:
    """Where some cues name their speaker, an unnamed cue continues the previous cue's speaker.

    A "Name:" prefix seen only once ("Look: I didn't...") is taken for text, unless it is a role
    word or the file has no other named speaker.
    """
    counts = Counter(r.speaker for r in records if id(r) in raw)
    if any(n >= 2 for n in counts.values()):
        for r in records:
            if id(r) in raw and counts[r.speaker] == 1 and not r.role:
                r.speaker, r.text = None, raw[id(r)]
    if any(r.speaker for r in records):
        prev: Record | None = None
        for r in records:
            if r.speaker is None and prev is not None:
                r.speaker, r.role = prev.speaker, prev.role
            prev = r if r.speaker else prev
    return records


def _timing_shape(line: str) -> str:
    """A cue timing line for an error message: quoted only when it holds nothing but timing characters."""
    s = line.strip()
    timing = len(s) <= 60 and re.fullmatch(r"[\w:.,\s>-]*", s) and sum(c.isalpha() for c in s) * 3 <= len(s)
    return repr(s) if timing else "(not a timing line)"


def _check_vtt_times(path: Path, text: str) -> None:
    for no, ln in enumerate(text.splitlines(), start=1):
        if "-->" not in ln:
            continue
        m = _VTT_CUE_RE.match(ln)
        bad = not m
        if m:
            for t in m.groups()[:2]:
                mm, ss = t.split(":")[-2], t.split(":")[-1].split(".")[0]
                bad = bad or int(mm) >= 60 or int(ss) >= 60
        if bad:
            raise InputError(
                path, f"bad cue timing {_timing_shape(ln)} (expected hh:mm:ss.ttt --> hh:mm:ss.ttt)", line=no
            )


def sniff_vtt(path: Path, head: str | None) -> bool:
    return head is not None and head.lstrip("\ufeff").startswith("WEBVTT")


@register_reader(
    "vtt",
    extensions=(".vtt",),
    sniff=sniff_vtt,
    description="WebVTT captions (Zoom 'Name:' prefixes, Teams <v Name> voice tags)",
)
def read_vtt(
    path: Path,
    *,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read WebVTT captions.

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_line_chars` (one line, 1,000,000), `max_records` (cues, 500,000).
    """
    text = load_text(path, max_bytes).lstrip("\ufeff")
    if not text.startswith("WEBVTT"):
        raise InputError(path, "not a WebVTT file (first line must be WEBVTT)", line=1)
    check_lines(path, text.splitlines(), max_line_chars)
    _check_vtt_times(path, text)
    try:
        vtt = webvtt.from_string(text)
    except (MalformedFileError, MalformedCaptionError) as exc:  # their messages quote cue text: not passed on
        raise InputError(path, f"malformed WebVTT ({type(exc).__name__})") from None
    if max_records is not None and len(vtt.captions) > max_records:
        raise too_many_records(path, max_records, "cues")
    records: list[Record] = []
    raw: dict[int, str] = {}
    for idx, cap in enumerate(vtt.captions, start=1):
        start = cap.start_time.in_milliseconds() / 1000
        end = cap.end_time.in_milliseconds() / 1000
        lines = cap.raw_text.split("\n")
        if cap.voice and not _VOICE_RE.match(lines[0]):
            lines[0] = f"<v {cap.voice}>" + lines[0]
        records += _records_from_cue(lines, start, end, idx, raw)
    return session_from_records(_inherit_speakers(records, raw), path, "vtt", session_id=session_id)


def sniff_srt(path: Path, head: str | None) -> bool:
    if not head:
        return False
    return any(_SRT_CUE_RE.match(ln) for ln in head.splitlines()[:10])


@register_reader("srt", extensions=(".srt",), sniff=sniff_srt, description="SubRip subtitles with 'Name:' prefixes")
def read_srt(
    path: Path,
    *,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read SubRip subtitles.

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_line_chars` (one line, 1,000,000), `max_records` (cues, 500,000).
    """
    text = load_text(path, max_bytes).lstrip("\ufeff")
    lines = text.splitlines()
    check_lines(path, lines, max_line_chars)
    records: list[Record] = []
    raw: dict[int, str] = {}
    idx = 0
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        # optional numeric counter, then the timing line
        j = i + 1 if lines[i].strip().isdigit() and i + 1 < len(lines) and "-->" in lines[i + 1] else i
        if "-->" not in lines[j]:
            raise InputError(path, "expected a cue number or timing line (hh:mm:ss,ttt --> hh:mm:ss,ttt)", line=j + 1)
        m = _SRT_CUE_RE.match(lines[j])
        try:
            if not m:
                raise ValueError
            start, end = _ms(m.groups()[:4]), _ms(m.groups()[4:])
        except ValueError:
            raise InputError(
                path, f"bad cue timing {_timing_shape(lines[j])} (expected hh:mm:ss,ttt --> hh:mm:ss,ttt)", line=j + 1
            ) from None
        k = j + 1
        body = []
        while k < len(lines) and lines[k].strip():
            body.append(lines[k])
            k += 1
        idx += 1
        if max_records is not None and idx > max_records:
            raise too_many_records(path, max_records, "cues")
        records += _records_from_cue(body, start, end, idx, raw)
        i = k
    return session_from_records(_inherit_speakers(records, raw), path, "srt", session_id=session_id)
