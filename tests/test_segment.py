"""SEGMENT: the classifier's units (records, long ones cut into sentence-packed pieces) with offsets and
times; analysis windows by time and by turns."""

from __future__ import annotations

import pytest

from alliance_nlp.diarize import merge_turns
from alliance_nlp.segment import DEFAULT_MAX_CHARS, Segmenter, pack_spans
from alliance_nlp.sentences import sentencizer, split_utterance
from alliance_nlp.session import Session, Turn, Utterance, Word
from alliance_nlp.windows import make_windows

LONG = (
    "I have been thinking about what you said last week about my drinking. "
    "It made me angry at first, honestly. But then I realised you might be right about it."
)


def session_of(turns):
    s = Session(id="seg")
    for i, (spk, text, start, end) in enumerate(turns):
        s.turns.append(Turn(spk, [Utterance(text, spk, 0, len(text), start=start, end=end, source=i)], text))
    s.ensure_speakers()
    return s


def offsets_ok(s):
    for t in s.turns:
        for u in t.utterances:
            assert t.text[u.char_start : u.char_end] == u.text


def test_records_are_the_unit_unless_longer_than_the_encoder_reads():
    s = session_of([("C", LONG, 0.0, 10.0), ("T", " ".join([LONG] * 8), 10.0, 90.0)])
    Segmenter()(s)
    assert len(s.turns[0].utterances) == 1  # a 160-character record stays whole
    pieces = s.turns[1].utterances
    assert len(pieces) > 1 and all(len(u.text) <= DEFAULT_MAX_CHARS for u in pieces)
    assert " ".join(u.text for u in pieces) == s.turns[1].text
    assert s.provenance["segment"] == {
        "unit": "record",
        "max_chars": DEFAULT_MAX_CHARS,
        "records_split": 1,
        "splitter": "spacy-blank-en-sentencizer",
    }
    offsets_ok(s)


def test_pack_spans_joins_sentences_up_to_the_limit():
    assert pack_spans([(0, 10), (11, 20), (21, 50), (51, 60)], 25) == [(0, 20), (21, 50), (51, 60)]
    assert pack_spans([(0, 100)], 25) == [(0, 100)]  # one long sentence stays whole


def test_long_utterance_split_with_offsets_and_source():
    s = session_of([("T", "How was your week?", 0.0, 2.0), ("C", LONG, 2.0, 14.0)])
    Segmenter(max_chars=60)(s)
    assert len(s.turns[0].utterances) == 1  # short turn kept whole
    utts = s.turns[1].utterances
    assert len(utts) == 3 and all(u.source == 1 for u in utts)
    assert utts[0].text.startswith("I have been") and utts[2].text.endswith("right about it.")
    offsets_ok(s)


def test_short_multi_sentence_turn_kept_whole():
    s = session_of([("C", "Yeah. Okay. Sure, I can do that.", None, None)])
    Segmenter()(s)
    assert len(s.turns[0].utterances) == 1


def test_offsets_in_merged_turn():
    s = session_of([("C", "Right.", 0.0, 1.0), ("C", LONG, 1.0, 10.0), ("C", LONG, 10.0, 20.0)])
    merge_turns(s)
    Segmenter(max_chars=60)(s)
    assert len(s.turns) == 1 and len(s.turns[0].utterances) == 7
    assert [u.source for u in s.turns[0].utterances] == [0, 1, 1, 1, 2, 2, 2]
    offsets_ok(s)


def test_times_split_proportionally_and_monotone():
    s = session_of([("C", LONG, 100.0, 112.0)])
    Segmenter(max_chars=60)(s)
    utts = s.turns[0].utterances
    assert utts[0].start == 100.0 and utts[-1].end == 112.0
    bounds = [x for u in utts for x in (u.start, u.end)]
    assert bounds == sorted(bounds)
    # proportional to characters
    n = len(LONG)
    assert utts[1].start == pytest.approx(100.0 + 12.0 * utts[1].char_start / n)


def test_times_follow_asr_words():
    text = "Okay so tell me more about that. What happened on Friday night after the party ended?"
    words, t = [], 0.0
    for w in text.split():
        words.append(Word(w, t, t + 0.3))
        t += 0.5
    u = Utterance(text, "T", 0, len(text), start=0.0, end=t, source=7, words=words)
    pieces = split_utterance(u, [(0, 32), (33, len(text))])
    assert pieces[0].text == "Okay so tell me more about that."
    assert pieces[0].start == 0.0 and pieces[0].end == pytest.approx(6 * 0.5 + 0.3)
    assert pieces[1].start == pytest.approx(7 * 0.5)
    assert len(pieces[0].words) + len(pieces[1].words) == len(words)
    assert all(p.source == 7 for p in pieces)


def test_segmenter_builds_spacy_once():
    a, b = Segmenter(), Segmenter(max_chars=50)
    assert a.nlp is b.nlp is sentencizer()


def test_windows_by_time():
    turns = [("T" if i % 2 else "C", f"Utterance number {i}.", 60.0 * i, 60.0 * i + 30) for i in range(12)]
    s = session_of(turns)
    w = make_windows(s, minutes=5.0)
    assert [x.by for x in w] == ["time"] * 3
    assert [(x.utt_start, x.utt_end) for x in w] == [(0, 5), (5, 10), (10, 12)]
    assert w[1].start == 300.0 and w[1].end == 600.0
    assert [x.index for x in w] == [0, 1, 2]


def test_windows_by_turns():
    s = session_of([("T" if i % 2 else "C", LONG if i == 3 else "Yes.", None, None) for i in range(45)])
    Segmenter(max_chars=60)(s)
    w = make_windows(s, turns=20)
    assert [x.by for x in w] == ["turns"] * 3
    assert [(x.turn_start, x.turn_end) for x in w] == [(0, 20), (20, 40), (40, 45)]
    assert w[0].utt_end == 22 and w[1].utt_start == 22  # turn 3 was split into 3 pieces
    assert w[-1].utt_end == len(s.utterances)
