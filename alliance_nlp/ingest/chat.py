"""CHAT transcripts (.cha, TalkBank): `*SPK:` main tiers, `@Participants` / `@ID` roles.

Own parser (no pylangacq needed at read time): continuation lines (starting with a tab) join
their tier, dependent tiers (`%mor:` ...) are skipped, CHAT codes are removed from the text
(`[/]`, `[= ...]`, `&=laughs`, `(.)`, `xxx`, `+...`, `<...>` scopes; fillers `&-um` keep "um"), and
times come from `\\x15start_end\\x15` bullets (milliseconds). The speaker id is the tier code
(THE, CLI, ...); roles Therapist/Counselor/Client/Patient... map to therapist/client.
Record.source is the 1-based line number of the main tier.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from ..session import Session
from ._common import load_text, role_from_label
from .base import Record, register_reader, session_from_records

_BULLET_RE = re.compile(r"\x15([^\x15]*)\x15")
_CLEAN = [
    (re.compile(r"\[[^\]]*\]"), " "),            # [/] [//] [= text] [+ exc] [*] [: word]
    (re.compile(r"&=\S+"), " "),                  # &=laughs
    (re.compile(r"&[-+~]?(\S+)"), r"\1"),         # &-um -> um, &+fr -> fr
    (re.compile(r"\(\d*\.+\d*\)"), " "),          # (.) (..) (2.5)
    (re.compile(r"(?<!\S)(?:xxx|yyy|www|xx|yy)(?!\S)"), " "),
    (re.compile(r"(?<!\S)0\S+"), " "),            # 0word: omitted
    (re.compile(r"(?<!\S)\+[^\s\w]*"), " "),      # +... +/. +//. +" +< linkers and terminators
    (re.compile(r"@[a-z:]+"), ""),                # word@s:spa
    (re.compile(r"[<>‡„↑↓≠∬]"), " "),
    (re.compile(r"\((\w+)\)"), r"\1"),            # (be)cause -> because
    (re.compile(r"(\w)_(\w)"), r"\1 \2"),         # ice_cream
    (re.compile(r"\s+([.?!,;])"), r"\1"),
]


def clean_chat(text: str) -> str:
    for rx, rep in _CLEAN:
        text = rx.sub(rep, text)
    return " ".join(text.split())


def sniff_cha(path: Path, head: str | None) -> bool:
    return bool(head) and ("@Begin" in head[:2000] or "@Participants" in head[:4000])


@register_reader("cha", extensions=(".cha",), sniff=sniff_cha, description="CHAT (.cha, TalkBank)")
def read_cha(path: Path, *, session_id: str | None = None) -> Session:
    text = load_text(path)
    # join continuation lines onto their tier, remembering the tier's first line
    tiers: list[tuple[int, str]] = []
    for no, ln in enumerate(text.splitlines(), start=1):
        if ln.startswith(("\t", " ")) and tiers:
            tiers[-1] = (tiers[-1][0], tiers[-1][1] + " " + ln.strip())
        elif ln.strip():
            tiers.append((no, ln.rstrip()))
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
            raise InputError(path, f"not a CHAT tier (expected *SPK:, %tier: or @Header): {t[:40]!r}", line=no)
        m = re.match(r"^\*([A-Za-z0-9_+-]+):\s*(.*)$", t)
        if not m:
            raise InputError(path, f"bad main tier (expected *SPK:<tab>text): {t[:40]!r}", line=no)
        spk, body = m.groups()
        start = end = None
        for b in _BULLET_RE.findall(body):
            bm = re.fullmatch(r"(?:%snd:\"[^\"]*\"_)?(\d+)_(\d+)", b)
            if not bm:
                raise InputError(path, f"bad time bullet {b!r} (expected start_end in milliseconds)", line=no)
            s_, e_ = int(bm.group(1)) / 1000, int(bm.group(2)) / 1000
            if e_ < s_:
                raise InputError(path, f"time bullet ends before it starts: {b!r}", line=no)
            start = s_ if start is None else min(start, s_)
            end = e_ if end is None else max(end, e_)
        body = _BULLET_RE.sub(" ", body)
        if "\x15" in body:
            raise InputError(path, "unterminated time bullet", line=no)
        records.append(Record(speaker=spk, text=clean_chat(body), source=no, start=start, end=end,
                              role=role_from_label(roles.get(spk)) or role_from_label(names.get(spk))))
    s = session_from_records(records, path, "cha", session_id=session_id, meta=meta)
    for code, sp in s.speakers.items():
        if code in names:
            sp.name = names[code]
    return s
