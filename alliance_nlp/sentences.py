"""Sentence spans and splitting an utterance at character spans (times and ASR words follow the pieces).

Shared by diarize (speaker changes inside unlabelled text) and segment (long utterances). Sentence
splitting uses spaCy's blank English pipeline with the rule-based `sentencizer` (no downloaded model).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .session import Utterance, Word

_NLP = None


def _import_spacy() -> Any:
    """spaCy without torch: its thinc backend imports torch when it can (seconds of start-up) though the
    rule-based sentencizer never uses it. Where torch is not loaded yet, thinc is told it is absent."""
    import sys

    if "torch" in sys.modules or "spacy" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]  # makes `import torch` raise ImportError
    try:
        import spacy
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return spacy


def sentencizer() -> Any:
    """The shared spaCy blank-English + sentencizer pipeline (built once per process)."""
    global _NLP
    if _NLP is None:
        spacy = _import_spacy()
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        _NLP = nlp
    return _NLP


def sentence_spans(texts: Iterable[str], nlp=None) -> list[list[tuple[int, int]]]:
    """For each text, the (start, end) char spans of its sentences, whitespace trimmed."""
    nlp = nlp or sentencizer()
    out: list[list[tuple[int, int]]] = []
    for doc in nlp.pipe(texts, batch_size=256):
        spans = []
        text = doc.text
        for s in doc.sents:
            a, b = s.start_char, s.end_char
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if b > a:
                spans.append((a, b))
        if not spans and text.strip():
            a = len(text) - len(text.lstrip())
            spans = [(a, len(text.rstrip()))]
        out.append(spans)
    return out


def _locate_words(text: str, words: list[Word]) -> list[int | None]:
    """Char position of each ASR word in `text` (searched left to right), None if not found."""
    pos, out = 0, list[int | None]()
    for w in words:
        token = (w.text or "").strip()
        at = text.find(token, pos) if token else -1
        if at < 0:
            out.append(None)
        else:
            out.append(at)
            pos = at + len(token)
    return out


def split_utterance(u: Utterance, spans: list[tuple[int, int]]) -> list[Utterance]:
    """Pieces of `u` at the given (start, end) spans of `u.text`; offsets stay relative to the turn.

    Times come from the ASR words inside each piece when they carry times, else from the utterance's
    span divided in proportion to characters. Pieces keep `source`, speaker and meta.
    """
    if not spans:
        return [u]
    n = len(u.text) or 1
    word_pos = _locate_words(u.text, u.words) if u.words else []
    pieces: list[Utterance] = []
    for k, (a, b) in enumerate(spans):
        # words belong to the piece whose span holds their first char; gaps go to the piece before
        nxt = spans[k + 1][0] if k + 1 < len(spans) else n + 1
        lo = a if k else -1
        ws = [w for w, p in zip(u.words, word_pos) if p is not None and lo <= p < nxt]
        start = end = None
        timed = [w for w in ws if w.start is not None and w.end is not None]
        if timed:
            start, end = timed[0].start, timed[-1].end
        elif u.start is not None and u.end is not None:
            dur = u.end - u.start
            start = u.start + dur * (a / n if k else 0.0)
            end = u.start + dur * (b / n if k + 1 < len(spans) else 1.0)
        elif u.start is not None and k == 0:
            start = u.start
        meta = dict(u.meta)
        if len(spans) > 1:
            meta["sentence"] = k
        pieces.append(
            Utterance(
                text=u.text[a:b],
                speaker=u.speaker,
                char_start=u.char_start + a,
                char_end=u.char_start + b,
                start=start,
                end=end,
                source=u.source,
                words=ws,
                meta=meta,
            )
        )
    # keep times monotone even if word times and proportional ones were mixed
    last = None
    for p in pieces:
        if p.start is not None and last is not None and p.start < last:
            p.start = last
        if p.end is not None and p.start is not None and p.end < p.start:
            p.end = p.start
        last = p.end if p.end is not None else (p.start if p.start is not None else last)
    return pieces
