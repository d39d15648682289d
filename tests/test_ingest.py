"""Readers on the shipped examples, and on small generated files (tmp_path) for edge cases."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from alliance_nlp.errors import InputError, UnknownFormatError
from alliance_nlp.ingest import READERS, detect_format, read
from alliance_nlp.session import Session

EX = Path(__file__).resolve().parents[1] / "data" / "examples"
_spec = importlib.util.spec_from_file_location("example_dialogues", EX / "dialogues.py")
D = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(D)


def words_of(dialogue):
    return " ".join(t for _, t in dialogue).split()


# ---- every reader on its example file ------------------------------------------------------------

# file, format, records, {speaker: count}, {speaker: role}, first start, first sources
EXAMPLES = [
    ("session_cbt.txt", "text", 63, {"T": 32, "C": 31}, {"T": "therapist", "C": "client"}, 4.0, [6, 7, 8]),
    ("session_zoom.vtt", "vtt", 45, {"Dr. Maya Okafor": 25, "Jordan Reyes": 20}, {}, 2.0, [1, 2, 3]),
    ("session_teams.vtt", "vtt", 43, {"Ellen Park": 23, "Sam Whitfield": 20}, {}, 2.0, [1, 2, 3]),
    ("session_teams.srt", "srt", 43, {"Ellen Park": 23, "Sam Whitfield": 20}, {}, 2.0, [1, 2, 3]),
    (
        "session_export.csv",
        "csv",
        30,
        {"Dr. Hughes": 15, "Alex": 15},
        {"Dr. Hughes": "therapist", "Alex": "client"},
        2.0,
        [2, 3, 4],
    ),
    ("session_whisperx.json", "whisperx", 22, {"SPEAKER_00": 11, "SPEAKER_01": 11}, {}, 2.0, [0, 1, 2]),
    ("session.rttm", "rttm", 24, {"SPEAKER_00": 12, "SPEAKER_01": 12}, {}, 2.0, [1, 2, 3]),
    (
        "session.docx",
        "docx",
        24,
        {"Therapist": 12, "Client": 12},
        {"Therapist": "therapist", "Client": "client"},
        None,
        [3, 4, 5],
    ),
    ("session_table.docx", "docx", 24, {"Dr. Lena Brandt": 12, "Maria": 12}, {}, 2.0, [2, 3, 4]),
    ("session_otter.txt", "otter", 24, {"Dr. Ana Silva": 12, "Chris Moran": 12}, {}, 3.0, [1, 4, 7]),
    ("session.cha", "cha", 24, {"THE": 13, "CLI": 11}, {"THE": "therapist", "CLI": "client"}, 2.0, [9, 10, 11]),
    (
        "session_convokit/utterances.jsonl",
        "convokit",
        18,
        {"counsellor_07": 9, "client_2143": 9},
        {"counsellor_07": "therapist", "client_2143": "client"},
        0.0,
        [1, 2, 3],
    ),
    ("session_unlabelled.txt", "text", 14, {"UNKNOWN": 14}, {}, None, [1, 3, 5]),
]


@pytest.mark.parametrize("name,fmt,n,counts,roles,start0,sources", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples(name, fmt, n, counts, roles, start0, sources):
    p = EX / name
    assert p.stat().st_size < (40_000 if p.suffix == ".docx" else 30_000)  # python-docx template: ~36 KB
    assert detect_format(p) == fmt
    s = read(p)
    assert s.source_format == fmt and s.source_path == str(p)
    assert len(s.turns) == n
    assert dict(Counter(t.speaker for t in s.turns)) == counts
    assert [t.utterances[0].source for t in s.turns[:3]] == sources
    assert s.turns[0].start == start0
    for spk, sp in s.speakers.items():
        assert sp.role == roles.get(spk, "unknown")
        if spk in roles:
            assert sp.role_method == "label" and sp.role_confidence == 1.0
    starts = [t.start for t in s.turns if t.start is not None]
    assert starts == sorted(starts)
    for t in s.turns:
        assert t.text and len(t.utterances) == 1
        u = t.utterances[0]
        assert u.text == t.text and u.char_end == len(t.text) and u.speaker == t.speaker
        if u.start is not None and u.end is not None:
            assert u.end >= u.start
    # every example round-trips through session JSON
    assert Session.from_dict(json.loads(json.dumps(s.to_dict()))).to_dict() == s.to_dict()


def test_cbt_quickstart_is_rich():
    s = read(EX / "session_cbt.txt")
    assert s.turns[-1].start >= 20 * 60  # spans 20+ minutes
    assert s.meta["header"][0].startswith("Session: 4")
    assert all(t.speaker in {"T", "C"} for t in s.turns)
    text = " ".join(t.text for t in s.turns)
    assert "Can we just move on?" in text and "With respect, you don't live my life." in text


@pytest.mark.parametrize(
    "name,dialogue",
    [
        ("session_whisperx.json", D.WHISPERX),
        ("session.rttm", D.RTTM),
        ("session_export.csv", D.CSV),
        ("session_teams.vtt", D.TEAMS),
        ("session_teams.srt", D.TEAMS),
        ("session_zoom.vtt", D.ZOOM),
        ("session.docx", D.DOCX),
        ("session_table.docx", D.DOCX),
        ("session_otter.txt", D.OTTER),
        ("session_convokit/utterances.jsonl", D.CONVOKIT),
        ("session_unlabelled.txt", D.UNLABELLED),
    ],
)
def test_examples_keep_every_word(name, dialogue):
    s = read(EX / name)
    assert " ".join(t.text for t in s.turns).split() == words_of(dialogue)


def test_vtt_times_are_milliseconds_and_srt_agrees():
    v, s = read(EX / "session_teams.vtt"), read(EX / "session_teams.srt")
    assert [(t.speaker, t.start, t.end, t.text) for t in v.turns] == [
        (t.speaker, t.start, t.end, t.text) for t in s.turns
    ]
    z = read(EX / "session_zoom.vtt")
    assert z.turns[1].start == pytest.approx(9.919) and z.turns[0].end == pytest.approx(8.906)


def test_rttm_assigns_words_to_turns():
    s = read(EX / "session.rttm")
    rttm_dialogue = [t for _, t in D.RTTM]
    assert [t.text for t in s.turns] == rttm_dialogue
    assert [t.speaker for t in s.turns] == ["SPEAKER_00" if k == "T" else "SPEAKER_01" for k, _ in D.RTTM]
    assert all(w.speaker == t.speaker for t in s.turns for w in t.utterances[0].words)
    assert s.meta["words_file"].endswith("session_words.json")


def test_whisperx_majority_speaker_and_words():
    s = read(EX / "session_whisperx.json")
    assert s.turns[5].speaker == "SPEAKER_01"  # segment 5 has no speaker key
    assert s.turns[9].speaker == "SPEAKER_01"  # one stray word by SPEAKER_00 does not flip it
    w = s.turns[0].utterances[0].words
    assert w[0].text == "Okay," and w[0].start == 2.0 and 0 < w[0].score <= 1
    assert s.meta["language"] == "en"


def test_cha_cleaning_names_and_bullets():
    s = read(EX / "session.cha")
    assert s.speakers["THE"].name == "Dana Kim" and s.speakers["CLI"].name == "Robin"
    assert s.turns[1].text == "um I did the spinning one twice but I stopped early."
    assert s.turns[4].text == "I got dizzy and I thought I'm going to I'm going to faint."
    assert s.turns[1].start == 6.923 and s.turns[1].end == 12.606
    assert "and we can stop at any point" in s.turns[14].text  # continuation line joined
    assert "laughs" not in " ".join(t.text for t in s.turns)


def test_cha_agrees_with_pylangacq():
    pylangacq = pytest.importorskip("pylangacq")
    chat = pylangacq.read_chat(str(EX / "session.cha"), strict=False)
    ours = read(EX / "session.cha")
    utts = chat.utterances()
    assert [u.participant for u in utts] == [t.speaker for t in ours.turns]
    assert [tuple(x / 1000 for x in u.time_marks) for u in utts] == [(t.start, t.end) for t in ours.turns]


# ---- plain text details ---------------------------------------------------------------------------


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding)) if isinstance(text, str) else p.write_bytes(text)
    return p


def test_text_labels_timestamps_and_continuations(tmp_path):
    p = write(
        tmp_path,
        "s.txt",
        "\n".join(
            [
                "Counselling session, week 3",
                "",
                "[00:01:23] Counsellor: Welcome back.",
                "Patient (00:01:30): Thanks.",
                "It's been a long week.",
                "",
                "And I'm tired.",
                "00:02:05 - Dr. Smith: Dr. Smith here, covering today. Note: nothing changes.",
                "SPEAKER_00: (12:05) Unlabelled diariser id.",
                "1:23 Interviewer: Short form.",
                "C: [00:03:10.450] Timestamp after the label.",
                "00:04:00",
                "T: Timed by the line above.",
                "Dr. Smith: Bye for now.",
            ]
        ),
    )
    s = read(p)
    assert [t.speaker for t in s.turns] == [
        "Counsellor",
        "Patient",
        "Dr. Smith",
        "SPEAKER_00",
        "Interviewer",
        "C",
        "T",
        "Dr. Smith",
    ]
    assert [t.start for t in s.turns] == [83.0, 90.0, 125.0, 725.0, 83.0, 190.45, 240.0, None]
    assert [t.utterances[0].source for t in s.turns] == [3, 4, 8, 9, 10, 11, 13, 14]
    assert s.turns[1].text == "Thanks. It's been a long week. And I'm tired."
    assert s.turns[2].text == "Dr. Smith here, covering today. Note: nothing changes."
    assert s.meta["header"] == ["Counselling session, week 3"]
    roles = {k: v.role for k, v in s.speakers.items()}
    assert roles == {
        "Counsellor": "therapist",
        "Patient": "client",
        "Dr. Smith": "unknown",
        "SPEAKER_00": "unknown",
        "Interviewer": "therapist",
        "C": "client",
        "T": "therapist",
    }


def test_text_sentence_with_colon_is_not_a_label(tmp_path):
    p = write(tmp_path, "s.txt", "T: How was it?\nC: Here's the thing: I went.\nWhat I mean is: it helped.\nT: Good.\n")
    s = read(p)
    assert [t.speaker for t in s.turns] == ["T", "C", "T"]
    assert s.turns[1].text == "Here's the thing: I went. What I mean is: it helped."


def test_text_unlabelled_lines_without_blank_lines(tmp_path):
    p = write(tmp_path, "s.txt", "How are you?\nNot great.\nTell me more.\n")
    s = read(p)
    assert [t.text for t in s.turns] == ["How are you?", "Not great.", "Tell me more."]
    assert s.unlabelled is True and set(s.speakers) == {"UNKNOWN"}
    assert [t.utterances[0].source for t in s.turns] == [1, 2, 3]


def test_text_header_block(tmp_path):
    p = write(tmp_path, "s.txt", "Date: 2025-01-02\nTherapist: Dr. Lee\nClient: J.\n\nT: Hi.\nC: Hello.\n")
    s = read(p)
    assert s.meta["header"] == ["Date: 2025-01-02", "Therapist: Dr. Lee", "Client: J."]
    assert [t.speaker for t in s.turns] == ["T", "C"]


def test_one_speaker_and_three_speakers(tmp_path):
    one = read(write(tmp_path, "one.txt", "Client: I wanted to say something.\nClient: And one more thing.\n"))
    assert set(one.speakers) == {"Client"} and len(one.turns) == 2
    assert one.speakers["Client"].role == "client"
    three = read(
        write(tmp_path, "three.txt", "T: Hello both.\nC: Hi.\nMother: Hello.\nT: Who starts?\nMother: I will.\n")
    )
    assert list(three.speakers) == ["T", "C", "Mother"]
    assert {k: v.role for k, v in three.speakers.items()} == {"T": "therapist", "C": "client", "Mother": "unknown"}


# ---- encodings --------------------------------------------------------------------------------------

TEXT = "T: Caf\u00e9 or tea? \u201cEither\u201d is fine.\nC: Na\u00efve question \u2013 tea.\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
@pytest.mark.parametrize("suffix", [".txt", ".csv", ".vtt"])
def test_encodings(tmp_path, encoding, suffix):
    body = {
        ".txt": TEXT,
        ".csv": "speaker,text\nT,Caf\u00e9 or tea? \u201cEither\u201d is fine.\nC,Na\u00efve question \u2013 tea.\n",
        ".vtt": "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nT: Caf\u00e9 or tea? \u201cEither\u201d is fine.\n\n"
        "00:00:02.500 --> 00:00:04.000\nC: Na\u00efve question \u2013 tea.\n",
    }[suffix]
    s = read(write(tmp_path, "s" + suffix, body, encoding))
    assert [t.text for t in s.turns] == [
        "Caf\u00e9 or tea? \u201cEither\u201d is fine.",
        "Na\u00efve question \u2013 tea.",
    ]
    assert [t.speaker for t in s.turns] == ["T", "C"]


# ---- malformed input: one clear InputError naming the file and line or field -------------------------


@pytest.mark.parametrize(
    "name", ["e.txt", "e.csv", "e.tsv", "e.json", "e.jsonl", "e.vtt", "e.srt", "e.cha", "e.rttm", "e.docx", "blank.txt"]
)
def test_empty_files(tmp_path, name):
    p = write(tmp_path, name, "  \n\n" if name == "blank.txt" else "")
    with pytest.raises(InputError) as ei:
        read(p)
    assert str(p) in str(ei.value) and "empty" in str(ei.value)


@pytest.mark.parametrize(
    "name,body,line,where",
    [
        ("bad.txt", "[00:01:02] T: Fine.\n[00:61:xx] C: Broken.\n", 2, "00:61:xx"),
        ("bad2.txt", "T: Fine.\n00:75:10 C: Minutes out of range.\n", 2, "00:75:10"),
        (
            "bad.vtt",
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nT: ok\n\n00:00:03.000 --> 00:0x:04.000\nC: bad\n",
            6,
            "cue timing",
        ),
        (
            "bad.srt",
            "1\n00:00:01,000 --> 00:00:02,000\nT: ok\n\n2\n00:00:03,000 --> 00:00:0a,000\nC: bad\n",
            6,
            "cue timing",
        ),
        ("bad.csv", "speaker,text,start\nT,hello,00:00:01\nC,hi,1:2:3:4\n", 3, "[start]"),
        ("bad_otter.txt", "Dr. Lee  0:03\nHello.\n\nSam  0:09\nHi.\n\nDr. Lee  0:7x\nHow are you?\n", 7, "0:7x"),
        (
            "bad.cha",
            "@Begin\n@Participants:\tTHE Therapist, CLI Client\n*THE:\thello . \x15100_abc\x15\n@End\n",
            3,
            "bullet",
        ),
        (
            "bad.rttm",
            "SPEAKER s 1 0.0 1.5 <NA> <NA> A <NA> <NA>\nSPEAKER s 1 zero 1.5 <NA> <NA> B <NA> <NA>\n",
            2,
            "onset",
        ),
        (
            "bad.jsonl",
            '{"id": "u0", "speaker": "T", "text": "hi", "conversation_id": "c"}\n{"id": "u1", "spea\n',
            2,
            "invalid JSON",
        ),
    ],
)
def test_bad_lines_are_named(tmp_path, name, body, line, where):
    p = write(tmp_path, name, body)
    with pytest.raises(InputError) as ei:
        read(p)
    e = ei.value
    assert e.line == line and e.path == str(p)
    assert str(e).startswith(f"{p}:{line}") and where in str(e)


@pytest.mark.parametrize(
    "body",
    [
        '{"segments": [{"start": 0.0, "end": 1.0, "text": "hi"',
        '[{"speaker": "T", "te',
        '{"schema": "alliance-nlp/session", "version": "1.0", "turns": [\n{"speaker":',
    ],
)
def test_truncated_json(tmp_path, body):
    p = write(tmp_path, "t.json", body)
    with pytest.raises(InputError) as ei:
        read(p)
    assert "truncated JSON" in str(ei.value) and ei.value.line is not None


def test_unknown_format_lists_formats(tmp_path):
    p = write(tmp_path, "notes.xyz", "just some words\n")
    with pytest.raises(UnknownFormatError) as ei:
        read(p)
    for name in ("text", "csv", "vtt", "rttm", "docx", "cha", "whisperx", "convokit", "otter"):
        assert name in str(ei.value)
    with pytest.raises(InputError, match="unknown format 'nope'"):
        read(write(tmp_path, "s.txt", "T: hi\n"), format="nope")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read(tmp_path / "missing.txt")
    d = tmp_path / "dir.txt"
    d.mkdir()
    with pytest.raises(InputError, match="directory"):
        read(d, format="text")


def test_binary_file_is_rejected(tmp_path):
    with pytest.raises(InputError):
        read(write(tmp_path, "b.txt", bytes(range(256)) * 8 + b"\x00\x00\x01"))
    with pytest.raises(InputError, match="docx"):
        read(write(tmp_path, "not.docx", "this is not a zip file"))


def test_format_override_reads_unknown_extension(tmp_path):
    s = read(write(tmp_path, "transcript.log", "T: Hello.\nC: Hi.\n"), format="text")
    assert [t.speaker for t in s.turns] == ["T", "C"]
    assert set(READERS) >= {
        "text",
        "csv",
        "tsv",
        "json",
        "convokit",
        "vtt",
        "srt",
        "whisperx",
        "rttm",
        "docx",
        "otter",
        "cha",
    }


def test_sniffing_ambiguous_extensions(tmp_path):
    assert detect_format(write(tmp_path, "a.txt", "Sam  0:03\nHello there.\n\nDr. Lee  0:09\nHi.\n")) == "otter"
    assert detect_format(write(tmp_path, "b.txt", "T: Hello.\nC: Hi.\n")) == "text"
    assert detect_format(write(tmp_path, "c.json", '[{"speaker": "T", "text": "hi"}]')) == "json"
    assert detect_format(write(tmp_path, "d.json", '{"segments": []}')) == "whisperx"
    assert (
        detect_format(
            write(
                tmp_path,
                "e.json",
                json.dumps([{"id": "u0", "speaker": "a", "text": "hi", "conversation_id": "c", "reply_to": None}]),
            )
        )
        == "convokit"
    )
    assert detect_format(write(tmp_path, "f.data", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n")) == "vtt"
