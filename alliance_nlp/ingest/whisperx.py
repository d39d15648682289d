"""WhisperX / faster-whisper JSON: `segments` with start/end/text/speaker and optional `words`
(start/end/word/speaker/score), or only `word_segments`.

A segment without a speaker gets the majority speaker of its words. A file with only
`word_segments` gives one record per speaker run. Record.source is the 0-based segment index
(or, for word-only files, the index of the run's first word). See `read_whisperx` for the size limits.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..session import Session, Word
from ._common import json_head, load_json, shape, time_field
from .base import MAX_BYTES, MAX_DEPTH, MAX_RECORDS, Record, register_reader, session_from_records, too_many_records


def sniff_whisperx(path: Path, head: str | None) -> bool:
    if not head:
        return False
    obj = json_head(head)
    if isinstance(obj, dict):
        return "segments" in obj or "word_segments" in obj
    if isinstance(obj, list):
        return bool(obj) and isinstance(obj[0], dict) and "words" in obj[0] and "text" in obj[0]
    h = head.lstrip()[:3000]
    return h.startswith("{") and ('"segments"' in h or '"word_segments"' in h)


def _score(value: Any, path: Path, field: str) -> float | None:
    """A word's confidence as a float; None when absent or not a number (as before). An integer beyond
    the float range is an InputError (float() would raise OverflowError)."""
    if not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        raise InputError(path, f"word score {shape(value)} is out of range", field=field) from None


def parse_words(
    items: Any, path: Path, where: str, max_records: int | None = MAX_RECORDS, counted: int = 0
) -> list[Word]:
    """Words of a list; `counted` words already read elsewhere in the file count towards `max_records`."""
    if not isinstance(items, list):
        raise InputError(path, "expected a list of words", field=where)
    if max_records is not None and counted + len(items) > max_records:
        raise too_many_records(path, max_records, "words")
    words = []
    for i, w in enumerate(items):
        f = f"{where}[{i}]"
        if not isinstance(w, dict):
            raise InputError(path, "expected a word object", field=f)
        text = w.get("word", w.get("text"))
        if not isinstance(text, str):
            raise InputError(path, "word has no 'word' (or 'text') string", field=f)
        score = w.get("score", w.get("probability"))
        words.append(
            Word(
                text=text.strip(),
                start=time_field(path, w.get("start"), field=f + ".start"),
                end=time_field(path, w.get("end"), field=f + ".end"),
                speaker=str(w["speaker"]) if w.get("speaker") is not None else None,
                score=_score(score, path, f + ".score"),
            )
        )
    return words


def majority_speaker(words: list[Word]) -> str | None:
    c = Counter(w.speaker for w in words if w.speaker)
    return c.most_common(1)[0][0] if c else None


def runs_from_words(words: list[Word], sources: list[int] | None = None) -> list[Record]:
    """One record per run of consecutive words by one speaker."""
    records: list[Record] = []
    for i, w in enumerate(words):
        if not w.text:
            continue
        src = sources[i] if sources else i
        if records and records[-1].speaker == w.speaker:
            r = records[-1]
            r.words.append(w)
            r.add_text(w.text)
            if w.end is not None:
                r.end = w.end
            if r.start is None:
                r.start = w.start
        else:
            records.append(Record(speaker=w.speaker, text=w.text, source=src, start=w.start, end=w.end, words=[w]))
    return records


@register_reader(
    "whisperx",
    extensions=(".json",),
    sniff=sniff_whisperx,
    description="WhisperX / faster-whisper JSON (segments with speaker, words)",
)
def read_whisperx(
    path: Path,
    *,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_depth: int | None = MAX_DEPTH,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read WhisperX / faster-whisper JSON.

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_depth` (JSON nesting, 100), `max_records` (segments, and words in all, 500,000 each).
    """
    obj = load_json(path, max_bytes=max_bytes, max_depth=max_depth)
    segs = obj if isinstance(obj, list) else obj.get("segments") if isinstance(obj, dict) else None
    meta = {}
    if isinstance(obj, dict) and isinstance(obj.get("language"), str):
        meta["language"] = obj["language"]
    if segs is None and isinstance(obj, dict) and "word_segments" in obj:
        words = parse_words(obj["word_segments"], path, "word_segments", max_records)
        return session_from_records(runs_from_words(words), path, "whisperx", session_id=session_id, meta=meta)
    if not isinstance(segs, list):
        raise InputError(path, "no 'segments' list", field="segments")
    if not segs:
        raise InputError(path, "no utterances found (empty segments)", field="segments")
    if max_records is not None and len(segs) > max_records:
        raise too_many_records(path, max_records, "segments")
    records = []
    nwords = 0
    for i, seg in enumerate(segs):
        f = f"segments[{i}]"
        if not isinstance(seg, dict):
            raise InputError(path, "expected a segment object", field=f)
        text = seg.get("text")
        if not isinstance(text, str):
            raise InputError(path, "segment has no 'text' string", field=f + ".text")
        words = (
            parse_words(seg["words"], path, f + ".words", max_records, nwords) if seg.get("words") is not None else []
        )
        nwords += len(words)
        spk = seg.get("speaker")
        spk = str(spk) if spk is not None else majority_speaker(words)
        start = time_field(path, seg.get("start"), field=f + ".start")
        end = time_field(path, seg.get("end"), field=f + ".end")
        records.append(Record(speaker=spk, text=text.strip(), source=i, start=start, end=end, words=words))
    return session_from_records(records, path, "whisperx", session_id=session_id, meta=meta)
