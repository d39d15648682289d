"""RTTM diarization plus word-timed ASR.

RTTM lines: `SPEAKER <file> <chan> <onset> <dur> <NA> <NA> <speaker> <NA> <NA>` (other line types
and `;;` / `#` comments are skipped). The words come from `words=PATH`, or from a file next to the
.rttm with the same stem: `<stem>_words.json`, `<stem>.words.json` or `<stem>.json` (a list of
{word|text, start, end}, an object with "words", or WhisperX JSON). Each word goes to the
diarization segment it overlaps most (the nearest one when none overlaps); consecutive words of one
speaker form a record. Record.source is the 1-based RTTM line of the segment holding the record's
first word. See `read_rttm` for the size limits.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..session import Session, Word
from ._common import check_lines, load_json, load_text, shape, shape_names
from .base import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_LINE_CHARS,
    MAX_RECORDS,
    Record,
    register_reader,
    session_from_records,
    too_many_records,
)
from .whisperx import parse_words


@dataclass
class Segment:
    start: float
    end: float
    speaker: str
    line: int


_OTHER_TYPES = {
    "SPKR-INFO",
    "LEXEME",
    "NON-LEX",
    "NON-SPEECH",
    "SEGMENT",
    "SU",
    "A/P",
    "IP",
    "CB",
    "EDIT",
    "FILLER",
    "NOSCORE",
    "NO_RT_METADATA",
    "SPEAKER-INFO",
}


def parse_rttm(
    path: Path,
    *,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_records: int | None = MAX_RECORDS,
) -> list[Segment]:
    segs: list[Segment] = []
    file_ids: list[tuple[int, str]] = []
    lines = load_text(path, max_bytes).splitlines()
    check_lines(path, lines, max_line_chars)
    for no, ln in enumerate(lines, start=1):
        s = ln.strip()
        if not s or s.startswith((";;", "#")):
            continue
        f = s.split()
        if f[0] != "SPEAKER":
            if f[0] in _OTHER_TYPES:
                continue
            raise InputError(path, "not an RTTM line (expected SPEAKER <file> <chan> <onset> <dur> ...)", line=no)
        if len(f) < 8:
            raise InputError(path, f"RTTM SPEAKER line needs at least 8 fields, got {len(f)}", line=no)
        try:
            onset, dur = float(f[3]), float(f[4])
        except ValueError:
            raise InputError(path, f"bad onset/duration {shape(f[3])} {shape(f[4])}", line=no) from None
        if onset < 0 or dur < 0 or not math.isfinite(onset + dur):
            raise InputError(path, f"negative or invalid onset/duration {shape(f[3])} {shape(f[4])}", line=no)
        if max_records is not None and len(segs) >= max_records:
            raise too_many_records(path, max_records, "SPEAKER lines")
        segs.append(Segment(onset, onset + dur, f[7], no))
        file_ids.append((no, f[1]))
    if not segs:
        raise InputError(path, "no SPEAKER lines in RTTM file")
    files = list(dict.fromkeys(fid for _, fid in file_ids))
    if len(files) > 1:  # several recordings in one RTTM: keep the one named like this file
        if path.stem not in files:
            raise InputError(
                path,
                f"RTTM holds {len(files)} recordings ({shape_names(files, 10)}); "
                f"none is named {path.stem!r}: split the file per recording",
            )
        segs = [g for g, (_, fid) in zip(segs, file_ids) if fid == path.stem]
    segs.sort(key=lambda g: (g.start, g.end))
    return segs


def find_words_file(path: Path) -> Path | None:
    for cand in (
        path.with_name(path.stem + "_words.json"),
        path.with_name(path.stem + ".words.json"),
        path.with_suffix(".json"),
    ):
        if cand.exists():
            return cand
    return None


def load_words(
    wpath: Path,
    *,
    max_bytes: int | None = MAX_BYTES,
    max_depth: int | None = MAX_DEPTH,
    max_records: int | None = MAX_RECORDS,
) -> list[Word]:
    obj = load_json(wpath, max_bytes=max_bytes, max_depth=max_depth)
    if isinstance(obj, dict):
        if isinstance(obj.get("words"), list):
            return parse_words(obj["words"], wpath, "words", max_records)
        if isinstance(obj.get("word_segments"), list):
            return parse_words(obj["word_segments"], wpath, "word_segments", max_records)
        if isinstance(obj.get("segments"), list):
            words: list[Word] = []
            for i, seg in enumerate(obj["segments"]):
                if isinstance(seg, dict) and isinstance(seg.get("words"), list):
                    words += parse_words(seg["words"], wpath, f"segments[{i}].words", max_records, len(words))
            if words:
                return words
        raise InputError(
            wpath, "no word list found (expected a list of words, 'words', 'word_segments' or 'segments' with words)"
        )
    if isinstance(obj, list):
        return parse_words(obj, wpath, "", max_records)
    raise InputError(wpath, "expected a JSON list of words")


class _MaxTree:
    """Maximum over index ranges, and the first index from a position whose value reaches x: O(log n) each."""

    def __init__(self, values: list[float]):
        self.n, size = len(values), 1
        while size < len(values):
            size *= 2
        self.size = size
        t = [-math.inf] * (2 * size)
        t[size : size + len(values)] = values
        for i in range(size - 1, 0, -1):
            t[i] = max(t[2 * i], t[2 * i + 1])
        self.t = t

    def range_max(self, lo: int, hi: int) -> float:
        t, res = self.t, -math.inf
        lo += self.size
        hi += self.size
        while lo < hi:
            if lo & 1:
                res = max(res, t[lo])
                lo += 1
            if hi & 1:
                hi -= 1
                res = max(res, t[hi])
            lo >>= 1
            hi >>= 1
        return res

    def first_at_least(self, lo: int, x: float) -> int:
        """The first index >= lo whose value is >= x, or n."""
        if lo >= self.n:
            return self.n
        t, i = self.t, lo + self.size
        while t[i] < x:
            while i & 1:  # a right child: its right neighbour is further up
                i >>= 1
            if i == 0:
                return self.n
            i += 1
        while i < self.size:
            i = 2 * i if t[2 * i] >= x else 2 * i + 1
        return i - self.size


def assign(words: list[Word], segs: list[Segment]) -> list[int | None]:
    """Index of the segment each word overlaps most, or the nearest one; None for untimed words.

    The earliest segment wins ties. O(log n) per word: candidates come from a prefix maximum of segment
    ends (segments starting at or before the word) and range queries over the segments starting inside it,
    instead of scanning every segment that might reach the word (all of them, once one segment is long).
    """
    n = len(segs)
    starts = [g.start for g in segs]
    pm: list[float] = []  # pm[k]: the largest end among segs[:k+1]; pm_idx[k]: the first segment with it
    pm_idx: list[int] = []
    top, top_i = -math.inf, -1
    for k, g in enumerate(segs):
        if g.end > top:
            top, top_i = g.end, k
        pm.append(top)
        pm_idx.append(top_i)
    trees: list[_MaxTree] = []  # (ends, durations), built on first need

    def tree(which: int) -> _MaxTree:
        if not trees:
            trees.extend((_MaxTree([g.end for g in segs]), _MaxTree([g.end - g.start for g in segs])))
        return trees[which]

    out: list[int | None] = []
    for w in words:
        if w.start is None:
            out.append(None)
            continue
        ws, we = w.start, w.end if w.end is not None else w.start
        h = bisect.bisect_right(starts, ws)  # segs[:h] start at or before the word
        hi = bisect.bisect_right(starts, we)  # segs[:hi] start before it ends
        cands: list[int] = []  # in index order; the first with the largest overlap wins
        if we < ws:  # a word ending before it starts: only segments holding its start, all overlapping equally
            k = bisect.bisect_left(pm, ws)
            if k < hi:
                cands.append(k)
        else:
            k = bisect.bisect_left(pm, we, 0, h)  # the first segment containing the whole word
            if k < h:
                cands.append(k)
            else:
                if h and pm[h - 1] >= ws:  # ends inside the word: the one ending last
                    cands.append(pm_idx[h - 1])
                if h < hi:  # starts inside the word
                    ka = tree(0).first_at_least(h, we)  # the first reaching past its end
                    inner_hi = min(ka, hi)
                    if h < inner_hi:  # wholly inside it: the longest
                        cands.append(tree(1).first_at_least(h, tree(1).range_max(h, inner_hi)))
                    if ka < hi:
                        cands.append(ka)
        best, best_ov = None, -1.0
        for k in cands:
            g = segs[k]
            ov = min(we, g.end) - max(ws, g.start)
            if ov > best_ov and (ov > 0 or g.start <= ws <= g.end):
                best, best_ov = k, ov
        if best is None:  # in a gap between segments: the nearest one (earlier on a tie)
            mid = (ws + we) / 2
            hm = bisect.bisect_right(starts, mid)
            near = []
            if hm:
                k = bisect.bisect_left(pm, mid, 0, hm)
                near.append(k if k < hm else pm_idx[hm - 1])
            if hm < n:
                near.append(hm)
            best = min(near, key=lambda k: max(segs[k].start - mid, mid - segs[k].end, 0.0))
        out.append(best)
    return out


@register_reader(
    "rttm",
    extensions=(".rttm",),
    description="RTTM diarization + word-timed ASR JSON (<stem>_words.json or words=PATH)",
)
def read_rttm(
    path: Path,
    *,
    words: str | Path | None = None,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
    max_depth: int | None = MAX_DEPTH,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read RTTM diarization with its word-timed ASR (`words=PATH`, or found next to the .rttm).

    Limits, each a LimitError when exceeded and None to switch off, for the RTTM and the words file:
    `max_bytes` (each file, 64 MiB), `max_line_chars` (one RTTM line, 1,000,000), `max_depth` (JSON
    nesting, 100), `max_records` (SPEAKER lines, and words, 500,000 each).
    """
    segs = parse_rttm(path, max_bytes=max_bytes, max_line_chars=max_line_chars, max_records=max_records)
    wpath = Path(words) if words else find_words_file(path)
    if wpath is None:
        raise InputError(
            path,
            f"RTTM has speaker times but no words: put word-timed ASR JSON next to it as "
            f"{path.stem}_words.json, or pass words=PATH",
        )
    if not wpath.exists():
        raise InputError(wpath, "words file not found")
    wl = load_words(wpath, max_bytes=max_bytes, max_depth=max_depth, max_records=max_records)
    if not wl:
        raise InputError(wpath, "no words in the words file")
    idx: list[int | None] = list(assign(wl, segs))
    last = None
    for i in range(len(idx)):  # untimed words follow the previous word
        if idx[i] is None:
            idx[i] = last
        last = idx[i]
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
            r.add_text(w.text)
            r.end = w.end if w.end is not None else r.end
        else:
            records.append(
                Record(speaker=spk, text=w.text, source=seg.line if seg else 0, start=w.start, end=w.end, words=[w])
            )
    meta = {"words_file": str(wpath), "diarization_segments": len(segs)}
    return session_from_records(records, path, "rttm", session_id=session_id, meta=meta)
