"""SEGMENT stage: the units the marker classifier reads.

The unit is the input record (a transcript line, CSV row, caption cue or ASR segment, merged into turns
by diarize but kept as separate utterances), because the classifier is trained on the corpora's
records: the same unit in training, evaluation and use. Only a record longer than `max_chars` (default
500 characters, about the 128 tokens the encoder reads) is cut, at sentence boundaries, into
consecutive pieces of whole sentences packed up to `max_chars`; a single longer sentence stays whole
(the encoder truncates it, as in training). Each piece keeps its `source` (input record), gets char
offsets into the turn text, and gets times from the ASR `words` when present, else the record's time
span split in proportion to characters.

Evaluation maps predictions on pieces back to the coded record (max probability over its pieces), so
the published figures are on the units users get (evaluation/eval_classifier.py).
"""

from __future__ import annotations

from .sentences import sentence_spans, sentencizer, split_utterance
from .session import Session, Turn, Utterance

DEFAULT_MAX_CHARS = 500


def pack_spans(spans: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """Consecutive sentence spans joined greedily into pieces of at most `max_chars` characters."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and b - out[-1][0] <= max_chars:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


class Segmenter:
    """Pipeline component `segment`: cut records longer than `max_chars` into sentence-packed pieces."""

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS):
        if max_chars < 1:
            raise ValueError("max_chars must be >= 1")
        self.max_chars = int(max_chars)
        self._nlp = None

    @property
    def nlp(self):
        """The spaCy sentencizer, built on first use: most records are short and never need it, and
        importing spaCy costs seconds."""
        if self._nlp is None:
            self._nlp = sentencizer()
        return self._nlp

    def split_turn(self, turn: Turn) -> int:
        """Split the turn's long utterances in place; returns how many were split."""
        long = [u for u in turn.utterances if len(u.text) > self.max_chars]
        if not long:
            return 0
        spans = dict(zip(map(id, long), sentence_spans((u.text for u in long), self.nlp)))
        new: list[Utterance] = []
        n = 0
        for u in turn.utterances:
            packed = pack_spans(spans.get(id(u)) or [], self.max_chars)
            if len(packed) > 1:
                new.extend(split_utterance(u, packed))
                n += 1
            else:
                new.append(u)
        turn.utterances = new
        return n

    def __call__(self, session: Session) -> Session:
        split = sum(self.split_turn(t) for t in session.turns)
        session.provenance["segment"] = {
            "unit": "record",
            "max_chars": self.max_chars,
            "records_split": split,
            "splitter": "spacy-blank-en-sentencizer",
        }
        return session
