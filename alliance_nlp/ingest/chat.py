"""CHAT transcripts (.cha, TalkBank): `*SPK:` main tiers, `@Participants` / `@ID` roles.

Own parser (no pylangacq needed at read time): continuation lines (starting with a tab) join
their tier, dependent tiers (`%mor:` ...) are skipped, CHAT codes are removed from the text
(`[/]`, `[= ...]`, `&=laughs`, `(.)`, `xxx`, `+...`, `<...>` scopes; fillers `&-um` keep "um"), and
times come from `\\x15start_end\\x15` bullets (milliseconds). The speaker id is the tier code
(THE, CLI, ...); roles Therapist/Counselor/Client/Patient... map to therapist/client.
Record.source is the 1-based line number of the main tier. See `read_cha` for the size limits.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from ..session import Session
from ._common import check_lines, load_text, role_from_label, shape
from .base import (
    MAX_BYTES,
    MAX_LINE_CHARS,
    MAX_RECORDS,
    Record,
    register_reader,
    session_from_records,
    too_many_records,
)

_BULLET_RE = re.compile(r"\x15([^\x15]*)\x15")
# Bullet times are milliseconds; 15 digits is ~30,000 years (more overflows float or int conversion).
_BULLET_TIME_RE = re.compile(r"(?:%snd:\"[^\"]*\"_)?(\d{1,15})_(\d{1,15})")
_TIER_RE = re.compile(r"^\*([A-Za-z0-9_+-]+):\s*(.*)$")
_BRACKETS_RE = re.compile(r"\[[^\]]*\]")
_CLEAN = [
    # (\[[^\]]*\] is applied in clean_chat, in linear time)    [/] [//] [= text] [+ exc] [*] [: word]
    (re.compile(r"&=\S+"), " "),  # &=laughs
    (re.compile(r"&[-+~]?(\S+)"), r"\1"),  # &-um -> um, &+fr -> fr
    (re.compile(r"\(\d*\.+\d*\)"), " "),  # (.) (..) (2.5)
    (re.compile(r"(?<!\S)(?:xxx|yyy|www|xx|yy)(?!\S)"), " "),
    (re.compile(r"(?<!\S)0\S+"), " "),  # 0word: omitted
    (re.compile(r"(?<!\S)\+[^\s\w]*"), " "),  # +... +/. +//. +" +< linkers and terminators
    (re.compile(r"@[a-z:]+"), ""),  # word@s:spa
    (re.compile(r"[<>‡„↑↓≠∬]"), " "),
    (re.compile(r"\((\w+)\)"), r"\1"),  # (be)cause -> because
    (re.compile(r"(\w)_(\w)"), r"\1 \2"),  # ice_cream
    # only from the start of a run of spaces: from every start, a long run not followed by punctuation is
    # scanned once per character (quadratic)
    (re.compile(r"(?<!\s)\s+([.?!,;])"), r"\1"),
]


def clean_chat(text: str) -> str:
    end = text.rfind("]")  # a "[" after the last "]" opens nothing: stop there (each would scan to the end)
    if end >= 0:
        text = _BRACKETS_RE.sub(" ", text[: end + 1]) + text[end + 1 :]
    for rx, rep in _CLEAN:
        text = rx.sub(rep, text)
    return " ".join(text.split())


def sniff_cha(path: Path, head: str | None) -> bool:
    return head is not None and ("@Begin" in head[:2000] or "@Participants" in head[:4000])


@register_reader("cha", extensions=(".cha",), sniff=sniff_cha, description="CHAT (.cha, TalkBank)")
def read_cha(
    path: Path,
    *,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read a CHAT transcript.

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_line_chars` (one line, 1,000,000), `max_records` (main tiers, 500,000).
    """
    text = load_text(path, max_bytes)
    lines = text.splitlines()
    check_lines(path, lines, max_line_chars)
    # join continuation lines onto their tier, remembering the tier's first line (parts joined once:
    # adding each line to the tier's string copies it every time, quadratic in a long tier)
    parts: list[tuple[int, list[str]]] = []
    for no, ln in enumerate(lines, start=1):
        if ln.startswith(("\t", " ")) and parts:
            parts[-1][1].append(ln.strip())
        elif ln.strip():
            parts.append((no, [ln.rstrip()]))
    tiers = [(no, " ".join(p)) for no, p in parts]
    del parts
    names: dict[str, str] = {}
    roles: dict[str, str] = {}
    meta: dict = {}
    records: list[Record] = []
    for no, t in tiers:
        if t.startswith("@"):
            key, _, val = t.partition(":")
            val = val.strip()
            if key == "@Participants":
                for part in val.split(","):
                    w = part.split()
                    if not w:
                        continue
                    code, role = w[0], w[-1] if len(w) > 1 else ""
                    roles[code] = role
                    if len(w) > 2:
                        names[code] = " ".join(w[1:-1]).replace("_", " ")
            elif key == "@ID":
                f = val.split("|")
                if len(f) > 7 and f[2] and f[7]:
                    roles.setdefault(f[2], f[7])
            elif key not in {"@Begin", "@End", "@UTF8"} and val:
                meta.setdefault("chat_headers", {})[key[1:]] = val
            continue
        if t.startswith("%"):
            continue
        if not t.startswith("*"):
            raise InputError(path, "not a CHAT tier (expected *SPK:, %tier: or @Header)", line=no)
        m = _TIER_RE.match(t)
        if not m:
            raise InputError(path, "bad main tier (expected *SPK:<tab>text)", line=no)
        spk, body = m.groups()
        start = end = None
        for b in _BULLET_RE.findall(body):
            bm = _BULLET_TIME_RE.fullmatch(b)
            if not bm:
                raise InputError(path, f"bad time bullet {shape(b)} (expected start_end in milliseconds)", line=no)
            s_, e_ = int(bm.group(1)) / 1000, int(bm.group(2)) / 1000
            if e_ < s_:
                raise InputError(path, f"time bullet ends before it starts: {shape(b)}", line=no)
            start = s_ if start is None else min(start, s_)
            end = e_ if end is None else max(end, e_)
        body = _BULLET_RE.sub(" ", body)
        if "\x15" in body:
            raise InputError(path, "unterminated time bullet", line=no)
        if max_records is not None and len(records) >= max_records:
            raise too_many_records(path, max_records, "main tiers")
        records.append(
            Record(
                speaker=spk,
                text=clean_chat(body),
                source=no,
                start=start,
                end=end,
                role=role_from_label(roles.get(spk)) or role_from_label(names.get(spk)),
            )
        )
    s = session_from_records(records, path, "cha", session_id=session_id, meta=meta)
    for code, sp in s.speakers.items():
        if code in names:
            sp.name = names[code]
    return s
