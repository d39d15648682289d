"""Helpers shared by the readers: timestamps, speaker labels, role words, JSON loading, error wording.

Everything here runs in time linear in its input: the regular expressions avoid nested or adjacent
quantifiers that can match the same characters (which backtrack quadratically on long runs of one
character), and error messages never quote transcript text (see `shape`).
"""

from __future__ import annotations

import json
import math
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InputError, LimitError
from .base import MAX_BYTES, MAX_DEPTH, read_text

# ---- error wording -----------------------------------------------------------------------------

_TOKEN_MAX = 24


def shape(value: Any) -> str:
    """How an error message shows a bad value: quoted only when it is a short token that is mostly digits
    and punctuation (a time like '00:61:xx', a number); otherwise its type and length, never its text,
    because a value in the wrong place may be part of what a client said."""
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if -(10**15) < value < 10**15 else f"a {value.bit_length()}-bit integer"
    if not isinstance(value, str):
        return f"a JSON {'object' if isinstance(value, dict) else 'array' if isinstance(value, list) else 'value'}"
    s = value
    letters = sum(ch.isalpha() for ch in s[: _TOKEN_MAX + 1])
    if 0 < len(s) <= _TOKEN_MAX and s.isprintable() and not any(ch.isspace() for ch in s) and letters * 3 <= len(s):
        return repr(s)
    return f"a {len(s)}-character text" if s else "an empty text"


_NAME_PUNCT = set(".?!,;\"'")


def shape_name(name: str) -> str:
    """A column or key name for an error message: quoted when short and name-like (at most three words, no
    sentence punctuation); a first row that is data rather than a header is then not echoed."""
    s = str(name)
    if 0 < len(s) <= _TOKEN_MAX and s.isprintable() and len(s.split()) <= 3 and not _NAME_PUNCT & set(s):
        return repr(s)
    return f"<{len(s)} characters>"


def shape_names(names: list, limit: int = 12) -> str:
    shown = ", ".join(shape_name(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_lines(
    path: Path, lines: list[str], max_line_chars: int | None, *, first_line: int = 1, what: str = "line"
) -> None:
    """LimitError naming the first line longer than `max_line_chars` (linear; no regex)."""
    if max_line_chars is None or not lines or max(map(len, lines)) <= max_line_chars:
        return
    no = next(i for i, ln in enumerate(lines) if len(ln) > max_line_chars)
    raise LimitError(
        path,
        f"{what} is longer than {max_line_chars:,} characters (max_line_chars="
        f"{max_line_chars}); pass a larger max_line_chars= to read it",
        line=no + first_line,
    )


# ---- roles -------------------------------------------------------------------------------------

THERAPIST_WORDS = {
    "t",
    "th",
    "ther",
    "therapist",
    "counselor",
    "counsellor",
    "counselour",
    "interviewer",
    "clinician",
    "psychologist",
    "psychotherapist",
    "psychiatrist",
    "analyst",
    "provider",
    "int",
    "iv",
}
CLIENT_WORDS = {
    "c",
    "cl",
    "client",
    "patient",
    "pt",
    "pat",
    "counselee",
    "counsellee",
    "interviewee",
}
_ROLE_WORD_MAX = max(map(len, THERAPIST_WORDS | CLIENT_WORDS))


def role_from_label(label: str | None) -> str | None:
    """'T', 'Therapist', 'Counsellor 2', 'Client (J.)' -> role; names such as 'Dr. Smith' -> None."""
    if not label:
        return None
    label = str(label)
    return _role_cached(label) if len(label) <= 64 else _role(label)


@lru_cache(maxsize=4096)
def _role_cached(label: str) -> str | None:  # labels repeat on every line: parse each once
    return _role(label)


def _role(label: str) -> str | None:
    # lower() last, and only on what can still be a role word: it does not touch digits, spaces or
    # separators, never shortens a string, and on a long non-ASCII string allocates 12 bytes a character
    s = drop_parens(label).strip()
    s = _drop_trailing_number(s)  # "therapist 2", "client_1"
    s = s.strip(" .:-_")
    if len(s) > _ROLE_WORD_MAX:
        return None
    s = s.lower()
    if s in THERAPIST_WORDS:
        return "therapist"
    if s in CLIENT_WORDS:
        return "client"
    return None


_PARENS_RE = re.compile(r"\([^)]*\)")


def drop_parens(s: str, rep: str = " ") -> str:
    r"""re.sub(r"\([^)]*\)", rep, s) in linear time: an "(" with no ")" after it is left as it is, so the
    search stops at the last ")" (otherwise each of a long run of "(" scans to the end of the string)."""
    end = s.rfind(")")
    return s if end < 0 else _PARENS_RE.sub(rep, s[: end + 1]) + s[end + 1 :]


_SEP_CHARS = "_.#:-"


def _drop_trailing_number(s: str) -> str:
    r"""re.sub(r"[\s_.#:-]*\d+$", "", s) without the regex, which is quadratic on long runs of spaces or
    digits: strip trailing digits, and if there were any, the separators before them."""
    i = len(s)
    while i and s[i - 1].isdecimal():
        i -= 1
    if i == len(s):
        return s
    while i and (s[i - 1].isspace() or s[i - 1] in _SEP_CHARS):
        i -= 1
    return s[:i]


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
        try:
            v = float(value)
        except OverflowError:  # an integer beyond the float range
            raise ValueError(f"not a valid time: {shape(value)} is too large") from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"not a valid time: {shape(value)}")
        return v
    if not isinstance(value, str):
        raise ValueError(f"not a time: {shape(value)}")
    s = value.strip()
    if not s or s.lower() in {"na", "n/a", "nan", "none", "null", "-"}:
        return None
    if _NUM_RE.match(s):
        v = float(s)
        if not math.isfinite(v):  # "1e999", or hundreds of digits
            raise ValueError(f"not a valid time: {shape(s)} is too large")
        return v
    m = _CLOCK_RE.match(s)
    if not m:
        raise ValueError(f"not a valid timestamp: {shape(s)}")
    h, mnt, sec, frac = m.groups()
    mnt_i, sec_i = int(mnt), int(sec)
    if sec_i >= 60 or (h is not None and mnt_i >= 60):
        raise ValueError(f"not a valid timestamp: {shape(s)} (minutes/seconds must be < 60)")
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
    return t, s[m.end() :], None


# ---- speaker labels ----------------------------------------------------------------------------

# label [timestamp]: text     e.g. "Therapist:", "Dr. Smith:", "SPEAKER_00:", "T (00:01:23):"
# Written to stay linear on long runs of spaces (the plain form, `[^:\[\]()\n]{0,40}?` then `\s*` twice,
# tries every label length against every split of the run): the label ends on a non-space (the shortest
# label that matches never ends in one, as the `\s*` after it takes the spaces), and the spaces before the
# optional timestamp and the colon are matched atomically, `(?=(?P<ws>\s*))(?P=ws)`, since what follows
# them is never a space. Same matches as the plain form (checked on random strings).
_LABEL_RE = re.compile(
    r"^(?P<label>[^\W_](?:[^:\[\]()\n]{0,39}?[^:\[\]()\s])??(?:\s*\((?!\s*\d)[^)\n]{1,30}\))?)"
    r"(?=(?P<ws>\s*))(?P=ws)(?:[\[(]\s*(?P<ts>" + _TIMELIKE + r")\s*[\])]\s*)?[:：](?=\s|$)\s*(?P<text>.*)$",
    re.S,
)
_SPEAKER_ID_RE = re.compile(r"^(?:speaker[ _-]?\d+|spk[ _-]?\d+|unknown speaker|speaker [a-z])$", re.I)
_NOT_LABEL_WORDS = {
    "and",
    "but",
    "so",
    "then",
    "well",
    "because",
    "if",
    "when",
    "what",
    "the",
    "a",
    "i",
    "note",
    "example",
    "question",
    "answer",
    "yes",
    "no",
    "ok",
    "okay",
    "http",
    "https",
}


@lru_cache(maxsize=4096)
def looks_like_label(label: str) -> bool:
    """A speaker label: a role word, a diariser id, or a short capitalised name (<= 4 words)."""
    label = label.strip()
    if not label or len(label) > 45:
        return False
    if role_from_label(label) or _SPEAKER_ID_RE.match(label):
        return True
    core = drop_parens(label).split()
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


def load_text(path: Path, max_bytes: int | None = MAX_BYTES) -> str:
    """Decoded text of a transcript file; InputError if it is empty or over `max_bytes`."""
    text = read_text(path, max_bytes)
    if not text.strip():
        raise InputError(path, "file is empty")
    return text


_LONE_SURROGATE_ESC_RE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def deeper_than(obj: Any, limit: int) -> bool:
    """Whether arrays/objects nest more than `limit` deep (the top level is 1). Iterative, one iterator per
    level held; stops at the first container too deep."""
    if not isinstance(obj, (list, dict)):
        return False
    if limit < 1:
        return True
    stack = [iter(obj.values() if isinstance(obj, dict) else obj)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, (list, dict)):
                if len(stack) >= limit:
                    return True
                stack.append(iter(v.values() if isinstance(v, dict) else v))
                break
        else:
            stack.pop()
    return False


def parse_json(text: str, max_depth: int | None = MAX_DEPTH) -> Any:
    """json.loads with the failures json raises beyond JSONDecodeError turned into ValueError with a short
    reason: nesting deeper than `max_depth` (json itself recurses, so very deep input ends in RecursionError
    before it can use much memory; the limit is checked on the result), integers over 4,300 digits, lone
    UTF-16 surrogates (replaced by U+FFFD, as they cannot be written back out as UTF-8)."""
    try:
        obj = json.loads(text)
    except RecursionError:
        raise _DepthError(max_depth, recursion=True) from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise ValueError("a number has too many digits" if "digits" in str(exc) else "invalid JSON") from None
    if max_depth is not None and deeper_than(obj, max_depth):
        raise _DepthError(max_depth)
    if "\\u" in text and _LONE_SURROGATE_ESC_RE.search(text):
        obj = _replace_surrogates(obj)
    return obj


class _DepthError(ValueError):
    def __init__(self, limit: int | None, recursion: bool = False):
        self.limit, self.recursion = limit, recursion
        super().__init__("JSON nested too deeply" if limit is None else f"JSON nested more than {limit} levels deep")


def _fix_str(s: str) -> str:
    return _SURROGATE_RE.sub("\ufffd", s) if _SURROGATE_RE.search(s) else s


def _replace_surrogates(obj: Any) -> Any:
    """Replace lone surrogates in every string (keys too); iterative, as the value may be deep."""
    root = [obj]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        box, key = stack.pop()
        v = box[key]
        if isinstance(v, str):
            box[key] = _fix_str(v)
        elif isinstance(v, list):
            stack.extend((v, i) for i in range(len(v)))
        elif isinstance(v, dict):
            if any(isinstance(k, str) and _SURROGATE_RE.search(k) for k in v):
                fixed = {_fix_str(k) if isinstance(k, str) else k: x for k, x in v.items()}
                v.clear()
                v.update(fixed)
            stack.extend((v, k) for k in list(v))
    return root[0]


def load_json(
    path: Path, text: str | None = None, *, max_bytes: int | None = MAX_BYTES, max_depth: int | None = MAX_DEPTH
) -> Any:
    """Parsed JSON; InputError naming the line for truncated or invalid JSON, LimitError for nesting deeper
    than `max_depth`."""
    text = load_text(path, max_bytes) if text is None else text
    try:
        return parse_json(text, max_depth)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "truncated JSON" if truncated else "invalid JSON"
        raise InputError(path, f"{what}: {exc.msg} (column {exc.colno})", line=exc.lineno) from None
    except _DepthError as exc:
        raise depth_error(path, exc) from None
    except ValueError as exc:
        raise InputError(path, f"invalid JSON: {exc}") from None


def depth_error(path: Path, exc: _DepthError, line: int | None = None) -> InputError:
    # json gives up (RecursionError) somewhere below Python's recursion limit: beyond a limit well under
    # that, the file is merely deeper than Python can parse
    if exc.limit is None or exc.recursion and exc.limit >= sys.getrecursionlimit() // 2:
        return InputError(path, "JSON nested too deeply for Python to parse", line=line)
    return LimitError(
        path,
        f"JSON nested more than {exc.limit} levels deep (max_depth={exc.limit}); pass a larger max_depth= to read it",
        line=line,
    )


def json_head(head: str | None) -> Any:
    """Best-effort parse of a sniffed head (may be truncated): the JSON value or None."""
    if not head:
        return None
    try:
        return parse_json(head, MAX_DEPTH)
    except ValueError:
        return None


_TAG_RE = re.compile(r"<[^>]*>")


def strip_tags(s: str) -> str:
    """Remove <...> markup; linear (see drop_parens): nothing after the last ">" can be a tag."""
    end = s.rfind(">")
    return s if end < 0 else _TAG_RE.sub("", s[: end + 1]) + s[end + 1 :]


def time_field(path: Path, value: Any, *, line: int | None = None, field: str | None = None) -> float | None:
    """parse_time, reporting a bad value as InputError at line/field."""
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InputError(path, str(exc), line=line, field=field) from None
