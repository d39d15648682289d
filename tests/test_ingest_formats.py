"""Format-specific reader behaviour on small generated files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alliance_nlp.errors import InputError
from alliance_nlp.ingest import read
from alliance_nlp.ingest._common import parse_time, role_from_label
from alliance_nlp.session import Session

EX = Path(__file__).resolve().parents[1] / "data" / "examples"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "value,seconds",
    [
        (83.5, 83.5),
        ("83.5", 83.5),
        ("1:23", 83.0),
        ("00:01:23", 83.0),
        ("00:01:23.450", 83.45),
        ("00:01:23,450", 83.45),
        ("1:02:03.5", 3723.5),
        ("75:10", 4510.0),
        ("", None),
        (None, None),
        ("NA", None),
    ],
)
def test_parse_time(value, seconds):
    assert parse_time(value) == pytest.approx(seconds) if seconds is not None else parse_time(value) is None


@pytest.mark.parametrize("value", ["1:2:3:4", "00:61:00", "00:00:75", "abc", "-3", float("nan"), True])
def test_parse_time_rejects(value):
    with pytest.raises(ValueError):
        parse_time(value)


@pytest.mark.parametrize(
    "label,role",
    [
        ("T", "therapist"),
        ("Therapist", "therapist"),
        ("Counselor", "therapist"),
        ("Counsellor 2", "therapist"),
        ("interviewer", "therapist"),
        ("C", "client"),
        ("Client (J.)", "client"),
        ("PATIENT", "client"),
        ("Dr. Smith", None),
        ("SPEAKER_00", None),
        ("Mother", None),
        ("", None),
    ],
)
def test_role_from_label(label, role):
    assert role_from_label(label) == role


# ---- session JSON ------------------------------------------------------------------------------------


def test_session_json_round_trip(tmp_path):
    s = read(EX / "session_cbt.txt")
    s.speakers["T"].name = "Therapist"
    s.meta["note"] = "kept"
    out = tmp_path / "s.json"
    s.save(out)
    back = read(out)
    assert back.to_dict() == s.to_dict()
    assert back.source_format == "text"  # a session keeps the format it was first read from
    assert Session.load(out).to_dict() == s.to_dict()


def test_session_json_wrong_version(tmp_path):
    d = read(EX / "session.cha").to_dict()
    d["version"] = "2.0"
    with pytest.raises(InputError, match="unsupported session version") as ei:
        read(write(tmp_path, "s.json", json.dumps(d)))
    assert ei.value.field == "version"


def test_simple_json_list(tmp_path):
    p = write(
        tmp_path,
        "s.json",
        json.dumps(
            {
                "utterances": [
                    {"speaker": "Therapist", "text": "Hello.", "start": "00:00:01.5", "end": 3},
                    {"speaker": "Client", "text": "Hi.", "start": 3.5},
                ]
            }
        ),
    )
    s = read(p)
    assert [(t.speaker, t.start, t.end) for t in s.turns] == [("Therapist", 1.5, 3.0), ("Client", 3.5, None)]
    assert [t.utterances[0].source for t in s.turns] == [0, 1]
    assert s.speakers["Therapist"].role == "therapist"
    bad = write(tmp_path, "b.json", json.dumps([{"speaker": "T", "text": "a", "start": "soon"}]))
    with pytest.raises(InputError) as ei:
        read(bad)
    assert ei.value.field == "[0].start"
    with pytest.raises(InputError, match="unrecognised JSON"):
        read(write(tmp_path, "c.json", '{"foo": 1}'))


# ---- CSV ---------------------------------------------------------------------------------------------


def test_csv_explicit_columns_and_semicolons(tmp_path):
    p = write(tmp_path, "s.csv", "Wer;Was;Beginn\nTherapeut;Hallo.;0:01\nKlientin;Hallo!;0:04\n")
    with pytest.raises(InputError, match="no text column"):
        read(p)
    s = read(p, columns={"speaker": "Wer", "text": "Was", "start": "Beginn"})
    assert [(t.speaker, t.text, t.start) for t in s.turns] == [
        ("Therapeut", "Hallo.", 1.0),
        ("Klientin", "Hallo!", 4.0),
    ]
    with pytest.raises(InputError, match="'Nope' not found") as ei:
        read(p, columns={"text": "Nope"})
    assert ei.value.field == "text"


def test_csv_role_column_and_line_numbers(tmp_path):
    p = write(
        tmp_path, "s.csv", 'interlocutor,utterance_text,begin\ntherapist,"Line one\nline two",1.5\n\nclient,Reply,4\n'
    )
    s = read(p)
    assert [t.speaker for t in s.turns] == ["therapist", "client"]
    assert [t.utterances[0].source for t in s.turns] == [2, 5]
    assert s.turns[0].text == "Line one line two"
    assert s.speakers["therapist"].role == "therapist"


def test_csv_end_before_start(tmp_path):
    with pytest.raises(InputError, match="before start") as ei:
        read(write(tmp_path, "s.csv", "speaker,text,start,end\nT,hi,5,4\n"))
    assert ei.value.line == 2 and ei.value.field == "end"


def test_tsv(tmp_path):
    s = read(write(tmp_path, "s.tsv", "speaker\ttext\nT\tHello, there.\nC\tHi.\n"))
    assert [t.text for t in s.turns] == ["Hello, there.", "Hi."]


# ---- subtitles ---------------------------------------------------------------------------------------


def test_vtt_two_voices_in_one_cue_and_unnamed_cue(tmp_path):
    p = write(
        tmp_path,
        "s.vtt",
        "WEBVTT\n\nNOTE made by hand\n\n1\n00:00:01.250 --> 00:00:04.999\n"
        "<v Dr. Lee>Hello there.</v>\n<v Sam>Hi.</v>\n\n2\n00:00:05.000 --> 00:00:07.000\n"
        "<v.loud Sam>I <b>mean</b> it.</v>\n\n3\n00:00:07.500 --> 00:00:09.000\nstill Sam talking\n",
    )
    s = read(p)
    assert [(t.speaker, t.text, t.start, t.end, t.utterances[0].source) for t in s.turns] == [
        ("Dr. Lee", "Hello there.", 1.25, 4.999, 1),
        ("Sam", "Hi.", 1.25, 4.999, 1),
        ("Sam", "I mean it.", 5.0, 7.0, 2),
        ("Sam", "still Sam talking", 7.5, 9.0, 3),
    ]


def test_vtt_not_webvtt(tmp_path):
    with pytest.raises(InputError, match="WEBVTT") as ei:
        read(write(tmp_path, "s.vtt", "00:00:01.000 --> 00:00:02.000\nhi\n"))
    assert ei.value.line == 1


def test_srt_without_names_is_unlabelled(tmp_path):
    s = read(
        write(
            tmp_path,
            "s.srt",
            "1\n00:00:01,000 --> 00:00:02,500\nhello\nthere\n\n2\n00:00:03,000 --> 00:00:04,000\n<i>hi</i>\n",
        )
    )
    assert [(t.speaker, t.text, t.start, t.end) for t in s.turns] == [
        ("UNKNOWN", "hello there", 1.0, 2.5),
        ("UNKNOWN", "hi", 3.0, 4.0),
    ]
    assert s.unlabelled


# ---- WhisperX, RTTM ------------------------------------------------------------------------------------


def test_whisperx_word_segments_only_and_untimed_words(tmp_path):
    ws = [
        {"word": "Hello", "start": 0.1, "end": 0.4, "speaker": "A"},
        {"word": "there.", "start": 0.5, "end": 0.8, "speaker": "A"},
        {"word": "Hi", "start": 1.2, "end": 1.4, "speaker": "B"},
        {"word": "2", "speaker": "B"},
    ]
    s = read(write(tmp_path, "w.json", json.dumps({"word_segments": ws})))
    assert [(t.speaker, t.text, t.start, t.end) for t in s.turns] == [
        ("A", "Hello there.", 0.1, 0.8),
        ("B", "Hi 2", 1.2, 1.4),
    ]
    with pytest.raises(InputError) as ei:
        read(
            write(
                tmp_path,
                "x.json",
                json.dumps({"segments": [{"start": 0, "end": 1, "text": "a", "words": [{"start": 0}]}]}),
            )
        )
    assert ei.value.field == "segments[0].words[0]"


RTTM = (
    "SPEAKER s 1 0.00 2.00 <NA> <NA> T <NA> <NA>\n;; comment\nSPEAKER s 1 2.10 1.50 <NA> <NA> C <NA> <NA>\n"
    "SPEAKER s 1 5.00 1.00 <NA> <NA> T <NA> <NA>\n"
)
WORDS = [
    {"word": "Hello", "start": 0.2, "end": 0.6},
    {"word": "there.", "start": 1.7, "end": 2.4},  # mostly T
    {"word": "Hi.", "start": 2.5, "end": 2.9},
    {"word": "Fine", "start": 4.0, "end": 4.2},  # gap: nearest C
    {"word": "good.", "start": 4.7, "end": 4.9},
    {"word": "4", "start": None, "end": None},
]  # nearest T, untimed


def test_rttm_overlap_nearest_and_untimed(tmp_path):
    p = write(tmp_path, "s.rttm", RTTM)
    with pytest.raises(InputError, match="s_words.json"):
        read(p)
    write(tmp_path, "s_words.json", json.dumps({"words": WORDS}))
    s = read(p)
    assert [(t.speaker, t.text, t.start, t.end, t.utterances[0].source) for t in s.turns] == [
        ("T", "Hello there.", 0.2, 2.4, 1),
        ("C", "Hi. Fine", 2.5, 4.2, 3),
        ("T", "good. 4", 4.7, 4.9, 4),
    ]
    other = write(tmp_path, "elsewhere/asr.json", json.dumps({"segments": [{"text": "x", "words": WORDS}]}))
    assert [t.text for t in read(p, words=other).turns] == ["Hello there.", "Hi. Fine", "good. 4"]
    with pytest.raises(InputError, match="words file not found"):
        read(p, words=tmp_path / "nope.json")


def test_rttm_bad_lines(tmp_path):
    with pytest.raises(InputError, match="at least 8 fields") as ei:
        read(write(tmp_path, "a.rttm", "SPEAKER s 1 0.0 1.0\n"))
    assert ei.value.line == 1
    with pytest.raises(InputError, match="no SPEAKER lines"):
        read(write(tmp_path, "b.rttm", ";; nothing\n"))


# ---- docx, otter, cha, convokit ----------------------------------------------------------------------


def test_docx_paragraphs_and_headerless_table(tmp_path):
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_paragraph("Session notes")
    d.add_paragraph("[00:00:05] Therapist: How are you?")
    d.add_paragraph("Client: Okay.")
    d.add_paragraph("Mostly okay.")
    d.save(tmp_path / "p.docx")
    s = read(tmp_path / "p.docx")
    assert [(t.speaker, t.text, t.start) for t in s.turns] == [
        ("Therapist", "How are you?", 5.0),
        ("Client", "Okay. Mostly okay.", None),
    ]
    assert s.meta["header"] == ["Session notes"] and s.meta["layout"] == "paragraphs"
    d = docx.Document()
    t = d.add_table(rows=0, cols=3)
    for row in [
        ("0:05", "T", "How are you doing this week?"),
        ("0:09", "C", "Better, I think, thanks."),
        ("0:15", "T", "Good to hear that."),
    ]:
        cells = t.add_row().cells
        for c, v in zip(cells, row):
            c.text = v
    d.save(tmp_path / "t.docx")
    s = read(tmp_path / "t.docx")
    assert [(t.speaker, t.start, t.utterances[0].source) for t in s.turns] == [
        ("T", 5.0, 1),
        ("C", 9.0, 2),
        ("T", 15.0, 3),
    ]
    assert s.speakers["T"].role == "therapist"


def test_otter_roles_and_footer(tmp_path):
    s = read(
        write(
            tmp_path,
            "o.txt",
            "Therapist  0:02\nHi.\n\nClient  1:05:10\nHello.\nStill me.\n\nTranscribed by https://otter.ai\n",
        ),
        format="otter",
    )
    assert [(t.speaker, t.text, t.start, t.end) for t in s.turns] == [
        ("Therapist", "Hi.", 2.0, 3910.0),
        ("Client", "Hello. Still me.", 3910.0, None),
    ]
    assert s.speakers["Client"].role == "client"


def test_cha_without_bullets_and_participant_roles(tmp_path):
    s = read(
        write(
            tmp_path,
            "s.cha",
            "@Begin\n@Participants:\tCOU Counselor, PAT Patient, MOT Mother\n"
            "*COU:\thow are you ?\n%mor:\tpro|how v|be pro|you ?\n*PAT:\tfine xxx .\n"
            "*MOT:\the is fine +...\n@End\n",
        )
    )
    assert [(t.speaker, t.text, t.start) for t in s.turns] == [
        ("COU", "how are you?", None),
        ("PAT", "fine.", None),
        ("MOT", "he is fine", None),
    ]
    assert {k: v.role for k, v in s.speakers.items()} == {"COU": "therapist", "PAT": "client", "MOT": "unknown"}


def test_convokit_conversations_and_speakers_json(tmp_path):
    rows = [
        {
            "id": f"u{i}",
            "speaker": spk,
            "text": f"utt {i}",
            "reply_to": None,
            "timestamp": None,
            "conversation_id": conv,
            "meta": {},
        }
        for i, (spk, conv) in enumerate([("a", "c1"), ("b", "c1"), ("a", "c2")])
    ]
    p = write(tmp_path, "corpus/utterances.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    write(
        tmp_path,
        "corpus/speakers.json",
        json.dumps({"a": {"meta": {"role": "therapist"}, "vectors": []}, "b": {"meta": {"role": "patient"}}}),
    )
    with pytest.raises(InputError, match="2 conversations"):
        read(p)
    s = read(p, conversation="c1")
    assert s.id == "c1" and [t.speaker for t in s.turns] == ["a", "b"]
    assert [t.utterances[0].source for t in s.turns] == [1, 2]
    assert {k: v.role for k, v in s.speakers.items()} == {"a": "therapist", "b": "client"}
    with pytest.raises(InputError, match="no conversation 'c9'"):
        read(p, conversation="c9")


def test_convokit_epoch_timestamps_are_relative():
    s = read(EX / "session_convokit" / "utterances.jsonl")
    assert s.turns[0].start == 0.0 and 0 < s.turns[1].start < 60
    assert s.meta["conversation_id"] == "cs14" and s.meta["timestamp_origin"] > 1e9
    assert s.id == "session_convokit"


def test_unknown_reader_option_is_an_input_error(tmp_path):
    from alliance_nlp.ingest import reader_options

    p = write(tmp_path, "s.txt", "T: hi\nC: hello\n")
    with pytest.raises(InputError, match="takes no option 'columns'"):
        read(p, columns={"text": "x"})
    assert set(reader_options("csv")) >= {"columns", "delimiter", "session_id"}
    assert read(p, session_id="abc").id == "abc"


def test_text_single_appearance_label_in_line_per_turn_file(tmp_path):
    s = read(write(tmp_path, "s.txt", "T: Hello both.\nC: Hi.\nT: How was the week?\nMother: Busy.\nC: Yes.\n"))
    assert [t.speaker for t in s.turns] == ["T", "C", "T", "Mother", "C"]


def test_csv_excel_sep_line(tmp_path):
    s = read(write(tmp_path, "s.csv", "sep=;\nspeaker;text;start\nT;Hallo, du.;1\nC;Hi;x\n".replace(";x", ";2")))
    assert [(t.speaker, t.text, t.utterances[0].source) for t in s.turns] == [("T", "Hallo, du.", 3), ("C", "Hi", 4)]
    with pytest.raises(InputError) as ei:
        read(write(tmp_path, "b.csv", "sep=;\nspeaker;text;start\nT;Hallo;1\nC;Hi;zz\n"))
    assert ei.value.line == 4 and ei.value.field == "start"


def test_rttm_several_recordings(tmp_path):
    p = write(tmp_path, "s.rttm", RTTM + "SPEAKER other 1 0.00 9.00 <NA> <NA> X <NA> <NA>\n")
    write(tmp_path, "s_words.json", json.dumps(WORDS))
    assert "X" not in read(p).speakers
    q = write(tmp_path, "t.rttm", RTTM + "SPEAKER other 1 0.00 9.00 <NA> <NA> X <NA> <NA>\n")
    write(tmp_path, "t_words.json", json.dumps(WORDS))
    with pytest.raises(InputError, match="2 recordings"):
        read(q)


def test_srt_one_off_colon_is_text(tmp_path):
    cues = ["Ellen: How was it?", "Sam: Fine.", "Look: I didn't go.", "Ellen: Okay.", "Sam: Really."]
    body = "".join(f"{i}\n00:00:0{i},000 --> 00:00:0{i},900\n{c}\n\n" for i, c in enumerate(cues, start=1))
    s = read(write(tmp_path, "s.srt", body))
    assert [(t.speaker, t.text) for t in s.turns][2] == ("Sam", "Look: I didn't go.")
