"""RTTM diarization plus word-timed ASR.

RTTM lines: `SPEAKER <file> <chan> <onset> <dur> <NA> <NA> <speaker> <NA> <NA>` (other line types
and `;;` / `#` comments are skipped). The words come from `words=PATH`, or from a file next to the
.rttm with the same stem: `<stem>_words.json`, `<stem>.words.json` or `<stem>.json` (a list of
{word|text, start, end}, an object with "words", or WhisperX JSON). Each word goes to the
diarization segment it overlaps most (the nearest one when none overlaps); consecutive words of one
speaker form a record. Record.source is the 1-based RTTM line of the segment holding the record's
first word.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..session import Session, Word
from ._common import load_json, load_text
from .base import Record, register_reader, session_from_records
from .whisperx import parse_words


@dataclass
class Segment:
    start: float
    end: float
    speaker: str
    line: int


def parse_rttm(path: Path) -> list[Segment]:
    segs = []
    file_ids: list[tuple[int, str]] = []
    for no, ln in enumerate(load_text(path).splitlines(), start=1):
        s = ln.strip()
        if not s or s.startswith((";;", "#")):
            continue
        f = s.split()
        if f[0] != "SPEAKER":
            if f[0] in {"SPKR-INFO", "LEXEME", "NON-LEX", "NON-SPEECH", "SEGMENT", "SU", "A/P", "IP", "CB",
                        "EDIT", "FILLER", "NOSCORE", "NO_RT_METADATA", "SPEAKER-INFO"}:
                continue
            raise InputError(path, f"not an RTTM line (expected SPEAKER ...): {s[:50]!r}", line=no)
        if len(f) < 8:
            raise InputError(path, f"RTTM SPEAKER line needs at least 8 fields, got {len(f)}", line=no)
        try:
            onset, dur = float(f[3]), float(f[4])
        except ValueError:
            raise InputError(path, f"bad onset/duration {f[3]!r} {f[4]!r}", line=no) from None
        if onset < 0 or dur < 0 or onset != onset or dur != dur:
            raise InputError(path, f"negative or invalid onset/duration {f[3]} {f[4]}", line=no)
        segs.append(Segment(onset, onset + dur, f[7], no))
        file_ids.append((no, f[1]))
    if not segs:
        raise InputError(path, "no SPEAKER lines in RTTM file")
    files = list(dict.fromkeys(fid for _, fid in file_ids))
    if len(files) > 1:  # several recordings in one RTTM: keep the one named like this file
        if path.stem not in files:
            raise InputError(path, f"RTTM holds {len(files)} recordings ({', '.join(files[:10])}); "
                                   f"none is named {path.stem!r}: split the file per recording")
        segs = [g for g, (_, fid) in zip(segs, file_ids) if fid == path.stem]
    segs.sort(key=lambda g: (g.start, g.end))
    return segs


def find_words_file(path: Path) -> Path | None:
    for cand in (path.with_name(path.stem + "_words.json"), path.with_name(path.stem + ".words.json"),
                 path.with_suffix(".json")):
        if cand.exists():
            return cand
    return None


def load_words(wpath: Path) -> list[Word]:
    obj = load_json(wpath)
    if isinstance(obj, dict):
        if isinstance(obj.get("words"), list):
            return parse_words(obj["words"], wpath, "words")
        if isinstance(obj.get("word_segments"), list):
            return parse_words(obj["word_segments"], wpath, "word_segments")
        if isinstance(obj.get("segments"), list):
            words = []
            for i, seg in enumerate(obj["segments"]):
                if isinstance(seg, dict) and isinstance(seg.get("words"), list):
                    words += parse_words(seg["words"], wpath, f"segments[{i}].words")
            if words:
                return words
        raise InputError(wpath, "no word list found (expected a list of words, 'words', 'word_segments' or "
                                "'segments' with words)")
    if isinstance(obj, list):
        return parse_words(obj, wpath, "")
    raise InputError(wpath, "expected a JSON list of words")


def assign(words: list[Word], segs: list[Segment]) -> list[int | None]:
    """Index of the segment each word overlaps most, or the nearest one; None for untimed words."""
    starts = [g.start for g in segs]
    maxdur = max(g.end - g.start for g in segs)
    out: list[int | None] = []
    for w in words:
        if w.start is None:
            out.append(None)
            continue
        ws, we = w.start, w.end if w.end is not None else w.start
        lo = bisect.bisect_left(starts, ws - maxdur)
        hi = bisect.bisect_right(starts, we)
        best, best_ov = None, -1.0
        for k in range(lo, hi):
            g = segs[k]
            ov = min(we, g.end) - max(ws, g.start)
            if ov > best_ov and (ov > 0 or g.start <= ws <= g.end):
                best, best_ov = k, ov
        if best is None:  # in a gap between segments: the nearest one (earlier on a tie)
            mid = (ws + we) / 2
            best = min(range(len(segs)), key=lambda k: max(segs[k].start - mid, mid - segs[k].end, 0.0))
        out.append(best)
    return out


@register_reader("rttm", extensions=(".rttm",),
                 description="RTTM diarization + word-timed ASR JSON (<stem>_words.json or words=PATH)")
def read_rttm(path: Path, *, words: str | Path | None = None, session_id: str | None = None) -> Session:
    segs = parse_rttm(path)
    wpath = Path(words) if words else find_words_file(path)
    if wpath is None:
        raise InputError(path, f"RTTM has speaker times but no words: put word-timed ASR JSON next to it as "
                               f"{path.stem}_words.json, or pass words=PATH")
    if not wpath.exists():
        raise InputError(wpath, "words file not found")
    wl = load_words(wpath)
    if not wl:
        raise InputError(wpath, "no words in the words file")
    idx = assign(wl, segs)
    last = None
    for k in range(len(idx)):  # untimed words follow the previous word
        if idx[k] is None:
            idx[k] = last
        last = idx[k]
    records: list[Record] = []
    for w, k in zip(wl, idx):
        if not w.text:
            continue
        seg = segs[k] if k is not None else None
        spk = seg.speaker if seg else None
        w = Word(text=w.text, start=w.start, end=w.end, speaker=spk, score=w.score)
        if records and records[-1].speaker == spk:
            r = records[-1]
            r.words.append(w)
            r.text += " " + w.text
            r.end = w.end if w.end is not None else r.end
        else:
            records.append(Record(speaker=spk, text=w.text, source=seg.line if seg else 0,
                                  start=w.start, end=w.end, words=[w]))
    meta = {"words_file": str(wpath), "diarization_segments": len(segs)}
    return session_from_records(records, path, "rttm", session_id=session_id, meta=meta)
