"""Timestamped plain-text transcript: one line per speaker turn, `[hh:mm:ss] Speaker: text`.

NVivo and MAXQDA import this as it is (timestamps and speaker names are recognised). It is also the
source text of the REFI-QDA export, so utterance offsets are computed here, once.

Choices, documented because importers depend on them:
- The timestamp is the turn's start. A turn without a time in a timed transcript carries the last known
  time forward (00:00:00 before the first); a transcript without any times gets no timestamps at all,
  just `Speaker: text` lines, rather than invented times.
- Line breaks, tabs and characters XML cannot hold are replaced one-for-one by spaces (or U+FFFD), so
  each turn is one line and character offsets stay those of the original text.
- A colon in a speaker name would end the name for importers; it is replaced by a hyphen.
- UTF-8, no byte-order mark (a BOM would shift every offset by one), lines end in `\\n`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..session import Session
from . import Analysed, per_session_paths, write_bytes_atomic

_LINE_BREAKS = {ord(c): " " for c in "\n\r\t\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
_XML_INVALID = re.compile("[\x00-\x08\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def one_line(text: str) -> str:
    """Same length, no line breaks, only characters XML 1.0 allows (so offsets survive)."""
    return _XML_INVALID.sub("\ufffd", text.translate(_LINE_BREAKS))


def hms(seconds: float) -> str:
    s = int(max(seconds, 0.0))  # floor: a turn at 59.7 s starts in second 59
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class UtteranceSpan:
    """Where utterance number `index` (session order, as in utterances.csv) sits in the transcript text."""

    index: int
    start: int
    end: int  # exclusive: text[start:end] is the utterance


@dataclass
class Transcript:
    text: str
    spans: list[UtteranceSpan] = field(default_factory=list)
    timed: bool = False


def speaker_label(session: Session, speaker_id: str) -> str:
    sp = session.speakers.get(speaker_id)
    name = (sp.name or sp.id) if sp else speaker_id
    return one_line(str(name)).replace(":", "-").strip() or "Speaker"


def render_transcript(session: Session) -> Transcript:
    """The transcript text and, for every utterance, its character span in it."""
    timed = session.has_times
    lines: list[str] = []
    spans: list[UtteranceSpan] = []
    pos = 0
    last_time = 0.0
    n = 0
    for turn in session.turns:
        if timed:
            t = turn.start
            last_time = t if t is not None else last_time
            prefix = f"[{hms(last_time)}] {speaker_label(session, turn.speaker)}: "
        else:
            prefix = f"{speaker_label(session, turn.speaker)}: "
        utts = turn.utterances
        body = turn.text
        local: list[tuple[int, int]] = []
        ok = bool(body)
        cursor = 0
        for u in utts:  # offsets from the turn when they slice back to the utterance, else search, else rebuild
            if ok and 0 <= u.char_start <= u.char_end <= len(body) and body[u.char_start : u.char_end] == u.text:
                local.append((u.char_start, u.char_end))
                cursor = u.char_end
                continue
            at = body.find(u.text, cursor) if ok and u.text else -1
            if at < 0:
                ok = False
                break
            local.append((at, at + len(u.text)))
            cursor = at + len(u.text)
        if not ok:
            body = " ".join(u.text for u in utts)
            local, cursor = [], 0
            for u in utts:
                local.append((cursor, cursor + len(u.text)))
                cursor += len(u.text) + 1
        line = prefix + one_line(body)
        base = pos + len(prefix)
        for a, b in local:
            spans.append(UtteranceSpan(n, base + a, base + b))
            n += 1
        lines.append(line)
        pos += len(line) + 1
    return Transcript("\n".join(lines) + ("\n" if lines else ""), spans, timed)


def write_transcripts(analysed: list[Analysed], output: str | os.PathLike) -> list[Path]:
    """One `.txt` per session (see the module docstring for the format)."""
    paths = per_session_paths(analysed, output, ".txt")
    for (session, _), path in zip(analysed, paths):
        write_bytes_atomic(Path(path), render_transcript(session).text.encode("utf-8"))
    return paths
