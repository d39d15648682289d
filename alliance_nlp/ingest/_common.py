"""Helpers shared by the readers: timestamps, speaker labels, role words, JSON loading."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from .base import read_text

# ---- roles -------------------------------------------------------------------------------------

THERAPIST_WORDS = {
    "t", "th", "ther", "therapist", "counselor", "counsellor", "counselour", "interviewer", "clinician",
    "psychologist", "psychotherapist", "psychiatrist", "analyst", "provider", "int", "iv",
}
CLIENT_WORDS = {
    "c", "cl", "client", "patient", "pt", "pat", "counselee", "counsellee", "interviewee",
}


def role_from_label(label: str | None) -> str | None:
    """'T', 'Therapist', 'Counsellor 2', 'Client (J.)' -> role; names such as 'Dr. Smith' -> None."""
    if not label:
        return None
    s = re.sub(r"\([^)]*\)", " ", str(label)).strip().lower()
    s = re.sub(r"[\s_.#:-]*\d+$", "", s)  # "therapist 2", "client_1"
    s = s.strip(" .:-_")
    if s in THERAPIST_WORDS:
        return "therapist"
    if s in CLIENT_WORDS:
        return "client"
    return None


# ---- times -------------------------------------------------------------------------------------

_CLOCK_RE = re.compile(r"^(?:(\d{1,3}):)?(\d{1,3}):(\d{1,2})(?:[.,](\d{1,6}))?$")
_NUM_RE = re.compile(r"^[+]?\d+(?:\.\d*)?$|^[+]?\.\d+$")


def parse_time(value: Any) -> float | None:
    """Seconds from 83.5, "83.5", "1:23", "00:01:23", "00:01:23.450", "00:01:23,450"; None if blank.

    Raises ValueError with a short reason when the value is not a valid time.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"not a valid time: {value!r}")
        return v
    s = str(value).strip()
    if not s or s.lower() in {"na", "n/a", "nan", "none", "null", "-"}:
        return None
    if _NUM_RE.match(s):
        return float(s)
    m = _CLOCK_RE.match(s)
    if not m:
        raise ValueError(f"not a valid timestamp: {s!r}")
    h, mnt, sec, frac = m.groups()
    mnt_i, sec_i = int(mnt), int(sec)
    if sec_i >= 60 or (h is not None and mnt_i >= 60):
        raise ValueError(f"not a valid timestamp: {s!r} (minutes/seconds must be < 60)")
    t = int(h or 0) * 3600 + mnt_i * 60 + sec_i
    if frac:
        t += int(frac) / 10 ** len(frac)
    return float(t)


# A token shaped like a clock time (possibly invalid): digits, colons, dots, commas, at least one colon.
_TIMELIKE = r"\d[\w.,]*:[\w:.,]*\w"
_LEAD_BRACKET_RE = re.compile(r"^\s*[\[(]\s*(" + _TIMELIKE + r")\s*[\])]\s*[-–—|:]?\s*")
_LEAD_BARE_RE = re.compile(r"^\s*(\d[\d.,]*:[\d:.,]*\d)(?:\s*[-–—|]\s+|\s+|$)")


def take_leading_time(s: str, *, bare: bool = True) -> tuple[float | None, str, str | None]:
    """Strip a leading timestamp ("[00:01:23]", "(12:05)", "00:01:23 -", "1:23 ") from `s`.

    Returns (seconds or None, rest, bad) where `bad` is the offending token when something shaped
    like a timestamp is not a valid one (the caller reports it with the line number).
    """
    m = _LEAD_BRACKET_RE.match(s) or (_LEAD_BARE_RE.match(s) if bare else None)
    if not m:
        return None, s, None
    tok = m.group(1)
    try:
        t = parse_time(tok)
    except ValueError:
        return None, s, tok
    return t, s[m.end():], None


# ---- speaker labels ----------------------------------------------------------------------------

# label [timestamp]: text     e.g. "Therapist:", "Dr. Smith:", "SPEAKER_00:", "T (00:01:23):"
_LABEL_RE = re.compile(
    r"^(?P<label>[^\W_][^:\[\]()\n]{0,40}?(?:\s*\((?!\s*\d)[^)\n]{1,30}\))?)"
    r"\s*(?:[\[(]\s*(?P<ts>" + _TIMELIKE + r")\s*[\])])?\s*[:：](?=\s|$)\s*(?P<text>.*)$",
    re.S,
)
_SPEAKER_ID_RE = re.compile(r"^(?:speaker[ _-]?\d+|spk[ _-]?\d+|unknown speaker|speaker [a-z])$", re.I)
_NOT_LABEL_WORDS = {"and", "but", "so", "then", "well", "because", "if", "when", "what", "the", "a", "i",
                    "note", "example", "question", "answer", "yes", "no", "ok", "okay", "http", "https"}


def looks_like_label(label: str) -> bool:
    """A speaker label: a role word, a diariser id, or a short capitalised name (<= 4 words)."""
    label = label.strip()
    if not label or len(label) > 45:
        return False
    if role_from_label(label) or _SPEAKER_ID_RE.match(label):
        return True
    core = re.sub(r"\([^)]*\)", " ", label).split()
    if not core or len(core) > 4:
        return False
    if core[0].lower().strip(".") in _NOT_LABEL_WORDS:
        return False
    return all(w[0].isupper() or w[0].isdigit() for w in core)


def split_label(line: str) -> tuple[str, str, str | None] | None:
    """'Therapist: hello' -> ('Therapist', 'hello', None); ('T', text, '00:01:23') for 'T [00:01:23]: text'."""
    m = _LABEL_RE.match(line)
    if not m or not looks_like_label(m.group("label")):
        return None
    return m.group("label").strip(), m.group("text"), m.group("ts")


# ---- files -------------------------------------------------------------------------------------

def load_text(path: Path) -> str:
    """Decoded text of a transcript file; InputError if it is empty."""
    text = read_text(path)
    if not text.strip():
        raise InputError(path, "file is empty")
    return text


def load_json(path: Path, text: str | None = None) -> Any:
    """Parsed JSON; InputError naming the line for truncated or invalid JSON."""
    text = load_text(path) if text is None else text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "truncated JSON" if truncated else "invalid JSON"
        raise InputError(path, f"{what}: {exc.msg} (column {exc.colno})", line=exc.lineno) from None


def json_head(head: str | None) -> Any:
    """Best-effort parse of a sniffed head (may be truncated): the JSON value or None."""
    if not head:
        return None
    try:
        return json.loads(head)
    except ValueError:
        return None


def strip_tags(s: str) -> str:
    return re.sub(r"<[^>]*>", "", s)


def time_field(path: Path, value: Any, *, line: int | None = None, field: str | None = None) -> float | None:
    """parse_time, reporting a bad value as InputError at line/field."""
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InputError(path, str(exc), line=line, field=field) from None
