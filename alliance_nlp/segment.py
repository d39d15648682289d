"""SEGMENT stage: split long utterances into sentences, and cut sessions into analysis windows.

Sentence splitting uses spaCy's blank English pipeline with the rule-based `sentencizer` (no
downloaded model). Only utterances longer than `max_chars` (default 120 characters, roughly 20-25
spoken words) AND containing more than one sentence are split: short turns ("Yeah. Okay, sure.")
are one conversational move and read better whole, while a long turn often mixes moves (a reflection
followed by a question) that the marker classifier should see separately. In the development
corpora about 80% of turns are under 120 characters, so most turns stay whole.

Each sentence keeps its `source` (input record), gets char offsets into the turn text, and gets times
from the ASR `words` when present (first/last word inside the sentence), else the utterance's time
span split proportionally by characters (always monotone).

`make_windows(session)` cuts a session into 5-minute windows when it has timestamps, else into
windows of a fixed number of turns, for downstream aggregation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

from .session import Session, Turn, Utterance, Word

_NLP = None


def sentencizer():
    """The shared spaCy blank-English + sentencizer pipeline (built once per process)."""
    global _NLP
    if _NLP is None:
        import spacy
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
    pos, out = 0, []
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
        pieces.append(Utterance(text=u.text[a:b], speaker=u.speaker, char_start=u.char_start + a,
                                char_end=u.char_start + b, start=start, end=end, source=u.source,
                                words=ws, meta=meta))
    # keep times monotone even if word times and proportional ones were mixed
    last = None
    for p in pieces:
        if p.start is not None and last is not None and p.start < last:
            p.start = last
        if p.end is not None and p.start is not None and p.end < p.start:
            p.end = p.start
        last = p.end if p.end is not None else (p.start if p.start is not None else last)
    return pieces


class Segmenter:
    """Pipeline component: split long utterances into sentences and store analysis windows.

    max_chars: utterances at most this long stay whole (default 120).
    window_minutes / window_turns: window size for `session.results["windows"]` (time-based when
    the session has timestamps, else turn-based).
    """

    def __init__(self, max_chars: int = 120, window_minutes: float = 5.0, window_turns: int = 20,
                 store_windows: bool = True):
        if max_chars < 1:
            raise ValueError("max_chars must be >= 1")
        self.max_chars = int(max_chars)
        self.window_minutes = float(window_minutes)
        self.window_turns = int(window_turns)
        self.store_windows = store_windows
        self.nlp = sentencizer()  # built once, here, not per call

    def split_turn(self, turn: Turn) -> None:
        long = [u for u in turn.utterances if len(u.text) > self.max_chars]
        if not long:
            return
        spans = dict(zip(map(id, long), sentence_spans((u.text for u in long), self.nlp)))
        new: list[Utterance] = []
        for u in turn.utterances:
            sp = spans.get(id(u))
            if sp and len(sp) > 1:
                new.extend(split_utterance(u, sp))
            else:
                new.append(u)
        turn.utterances = new

    def __call__(self, session: Session) -> Session:
        for turn in session.turns:
            self.split_turn(turn)
        session.meta.setdefault("segment", {})
        session.meta["segment"] = {"max_chars": self.max_chars, "splitter": "spacy-blank-en-sentencizer"}
        if self.store_windows:
            session.results["windows"] = make_windows(session, self.window_minutes, self.window_turns)
        return session


@dataclass
class Window:
    index: int
    by: str  # "time" | "turns"
    start: float | None  # seconds (time windows: the window bounds; turn windows: first/last time if any)
    end: float | None
    turn_start: int  # turn index range [turn_start, turn_end)
    turn_end: int
    utt_start: int  # index range into session.utterances [utt_start, utt_end)
    utt_end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_windows(session: Session, minutes: float = 5.0, turns: int = 20) -> list[dict[str, Any]]:
    """Windows over a session, as JSON-able dicts (see `Window`).

    With timestamps: consecutive `minutes`-long windows on the session clock ([k*W, (k+1)*W));
    an utterance belongs to the window holding its start (an untimed utterance follows the one
    before it); empty windows are left out, so window indices are consecutive but times may jump.
    Without timestamps: windows of `turns` consecutive turns (the last one may be shorter).
    """
    if minutes <= 0 or turns <= 0:
        raise ValueError("window size must be positive")
    utt_turn: list[int] = []
    utt_start: list[float | None] = []
    for ti, t in enumerate(session.turns):
        for u in t.utterances:
            utt_turn.append(ti)
            utt_start.append(u.start)
    n = len(utt_turn)
    out: list[Window] = []
    if n and any(x is not None for x in utt_start):
        width = minutes * 60.0
        first = next(x for x in utt_start if x is not None)
        keys, last = [], first
        for x in utt_start:
            last = x if x is not None else last
            keys.append(int(max(last, 0.0) // width))
        i = 0
        while i < n:
            j = i
            while j < n and keys[j] == keys[i]:
                j += 1
            out.append(Window(len(out), "time", keys[i] * width, (keys[i] + 1) * width,
                              utt_turn[i], utt_turn[j - 1] + 1, i, j))
            i = j
        return [w.to_dict() for w in out]
    # turn-based
    turn_first_utt, k = [], 0
    for t in session.turns:
        turn_first_utt.append(k)
        k += len(t.utterances)
    turn_first_utt.append(k)
    for a in range(0, len(session.turns), turns):
        b = min(a + turns, len(session.turns))
        ts = [x for t in session.turns[a:b] for x in (t.start, t.end) if x is not None]
        out.append(Window(len(out), "turns", min(ts) if ts else None, max(ts) if ts else None,
                          a, b, turn_first_utt[a], turn_first_utt[b]))
    return [w.to_dict() for w in out]
