"""De-identification (`alliance_nlp.redact`): patterns, names with propagation, session consistency, offsets,
and no identifier surviving in any output file. All names, numbers and places here are invented."""

from __future__ import annotations

import re

import pytest

from alliance_nlp.outputs import write_outputs
from alliance_nlp.redact import Redactor, pattern_spans, speaker_name_parts
from alliance_nlp.session import Episode, Session, Speaker, Turn, Utterance, Word

PH = re.compile(r"\[(NAME|PLACE|DATE|PHONE|EMAIL|ID|ORG|URL)_(\d+)\]")


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def types_in(text: str) -> list[str]:
    return [m.group(1) for m in PH.finditer(text)]


# ---- structured identifiers -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, surface, typ",
    [
        ("Email me at quill.harrow77@fastpost.net tonight.", "quill.harrow77@fastpost.net", "EMAIL"),
        ("It's quill dot harrow at fastpost dot com, all lower case.", "quill dot harrow at fastpost dot com", "EMAIL"),
        ("The worksheet is at https://www.brindlecare.org/sheets?id=4 if you want it.", "brindlecare.org", "URL"),
        ("Look at brindlecare.org.uk for the leaflet.", "brindlecare.org.uk", "URL"),
        ("Ring me on 07700 900461 after six.", "07700 900461", "PHONE"),
        ("My cell is (415) 555-0172.", "555-0172", "PHONE"),
        ("Call +44 20 7946 0321 and ask for the desk.", "7946 0321", "PHONE"),
        ("The office is 503-555-0119 ext. 44.", "503-555-0119", "PHONE"),
        ("My NHS number is 943 476 5919.", "943 476 5919", "ID"),
        ("Social security number 612-44-0917.", "612-44-0917", "ID"),
        ("The record number is MRN 30448817.", "30448817", "ID"),
        ("Quote reference QX-2291-0047 when you call.", "QX-2291-0047", "ID"),
        ("Her member ID is ZBT880213447.", "ZBT880213447", "ID"),
        ("I was born on 14/07/1991.", "14/07/1991", "DATE"),
        ("We split up on March 3rd, 2022.", "March 3rd", "DATE"),
        ("The anniversary is the 21st of November.", "21st of November", "DATE"),
        ("My appointment is on 2024-09-30.", "2024-09-30", "DATE"),
        ("Our flat is 27 Quarry Hill Road, LS9 8TT.", "LS9 8TT", "PLACE"),
    ],
)
def test_structured_identifiers(redactor: Redactor, text: str, surface: str, typ: str) -> None:
    out = redactor.redact_text(text)
    assert surface not in out, out
    assert typ in types_in(out), out


def test_non_identifiers_are_kept() -> None:
    text = (
        "It happened in 2019, on a Tuesday. I walked 10,000 steps, paid $2000, and scored 18 out of 27. "
        "I was 23 at the time and it's been 365 days since."
    )
    assert pattern_spans(text) == []


def test_types_and_bare_placeholders() -> None:
    r = Redactor(types=["EMAIL"], use_model=False, numbered=False)
    out = r.redact_text("Write to quill@fastpost.net or call 07700 900461.")
    assert out == "Write to [EMAIL] or call 07700 900461."
    with pytest.raises(ValueError):
        Redactor(types=["SHOE_SIZE"], use_model=False)


def test_speaker_labels() -> None:
    assert speaker_name_parts("Dr. Hana Novotná") == ["Hana", "Novotná"]
    for role in ("T", "C", "Therapist", "Client", "SPEAKER_00", "Speaker 2", "Interviewer", "UNKNOWN", "usr"):
        assert speaker_name_parts(role) == [], role


# ---- sessions ---------------------------------------------------------------------------------------
def make_session() -> tuple[Session, list[str]]:
    lines = [
        ("Dr. Hana Novotná", "Hi Pell, good to see you. How was the visit to Tregarth?"),
        (
            "Pellam Oduya",
            "Long. My brother Tobiah drove us from Tregarth to Penhallow on July 9th. Tobiah never stops talking.",
        ),
        ("Dr. Hana Novotná", "And your mum?"),
        (
            "Pellam Oduya",
            "She's still at Kestle Bay Care Home. You can reach her nurse on 07700 900872 "
            "or at nurse.jenna@kestlebay.co.uk.",
        ),
        ("Dr. Hana Novotná", "Thanks, Pellam. Your file number with us is KB-44817. Tobiah is welcome too."),
    ]
    gold = [
        "Hana",
        "Novotná",
        "Pell",
        "Pellam",
        "Oduya",
        "Tregarth",
        "Tobiah",
        "Penhallow",
        "July 9th",
        "Kestle Bay Care Home",
        "07700 900872",
        "nurse.jenna@kestlebay.co.uk",
        "KB-44817",
    ]
    turns = []
    for i, (who, text) in enumerate(lines):
        # the first sentence and the rest as two utterances, to check offsets
        cut = text.find(". ") + 1 if ". " in text else len(text)
        parts = [p for p in (text[:cut], text[cut:].strip()) if p]
        utts = [
            Utterance(p, who, start=float(i * 10 + k), end=float(i * 10 + k + 1), source=i) for k, p in enumerate(parts)
        ]
        if i == 1:
            utts[0].words = [Word(w, float(j), float(j) + 0.5, who) for j, w in enumerate(parts[0].split())]
        turns.append(Turn(who, utts))
    s = Session(
        "pellam_oduya_2024-07-12",
        turns,
        source_path="/clinic/Pellam Oduya/pellam_oduya_2024-07-12.txt",
        source_format="text",
        meta={"header": ["Date: 2024-07-12", "Client: Pellam Oduya", "Client ID: KB-44817"]},
    )
    s.speakers = {
        "Dr. Hana Novotná": Speaker("Dr. Hana Novotná", "Dr. Hana Novotná", "therapist", 1.0, "label"),
        "Pellam Oduya": Speaker("Pellam Oduya", "Pellam Oduya", "client", 1.0, "label"),
    }
    s.results.episodes = [Episode(0, "withdrawal", 1, 2, None, None, (1,), ("Pellam Oduya",), 0.8, True, 3, True)]
    return s, gold


def test_redact_session_names_propagation_and_consistency(redactor: Redactor) -> None:
    s, gold = make_session()
    red = redactor.redact_session(s)
    assert s.turns[1].text.startswith("Long. My brother Tobiah")  # the original is untouched
    text = "\n".join(t.text for t in red.turns)
    for g in gold:
        assert g not in text, g
    # speakers: names become placeholders, roles stay
    ids = list(red.speakers)
    assert all(PH.fullmatch(i) for i in ids), ids
    assert {sp.role for sp in red.speakers.values()} == {"therapist", "client"}
    assert all(t.speaker in red.speakers for t in red.turns)
    client = next(i for i, sp in red.speakers.items() if sp.role == "client")
    therapist = next(i for i, sp in red.speakers.items() if sp.role == "therapist")
    assert client != therapist
    # the client's first name in the therapist's speech gets the client's placeholder
    assert f"Thanks, {client}." in red.turns[4].text
    # one brother, one placeholder, wherever he is named (also sentence-initially)
    brother = re.search(r"My brother (\[NAME_\d+\])", red.turns[1].text).group(1)
    assert red.turns[1].text.count(brother) == 2 and brother in red.turns[4].text
    assert brother not in (client, therapist)
    # the same town twice: one placeholder
    towns = re.findall(r"\[PLACE_\d+\]", red.turns[0].text + red.turns[1].text)
    assert len(towns) >= 3 and len(set(towns[:2])) == 1
    # the file number in the header and in speech: one placeholder
    ids_in_text = re.findall(r"\[ID_\d+\]", red.turns[4].text)
    assert ids_in_text and ids_in_text[0] in " ".join(red.meta["header"])
    assert red.results.episodes[0].by == (client,)
    assert red.provenance["redact"]["speakers_renamed"] == 2


def test_offsets_and_words(redactor: Redactor) -> None:
    s, gold = make_session()
    red = redactor.redact_session(s)
    for t in red.turns:
        assert len(t.utterances) >= 1
        for u in t.utterances:
            assert t.text[u.char_start : u.char_end] == u.text
    words = red.turns[1].utterances[0].words
    assert words and all(w.speaker in red.speakers for w in words)
    assert not any(g in w.text for w in words for g in gold)
    assert [w.start for w in words] == [w.start for w in s.turns[1].utterances[0].words]


def test_no_identifier_survives_in_output_files(redactor: Redactor, tmp_path) -> None:
    s, gold = make_session()
    red = redactor.redact_session(s)
    assert "Pellam" not in red.id and "Oduya" not in (red.source_path or "")
    paths = write_outputs(red, tmp_path / "out")
    assert {"session", "utterances", "summary", "report"} <= set(paths)
    for name, p in paths.items():
        content = p.read_text(encoding="utf-8")
        for g in gold + ["Pellam Oduya", "2024-07-12"]:
            assert g not in content, (name, g)
    assert Session.load(paths["session"]).speakers.keys() == red.speakers.keys()


def test_redact_text_is_consistent_within_a_text(redactor: Redactor) -> None:
    out = redactor.redact_text("Dr. Quenby said Rask should call Dr. Quenby on 07700 900123, not 07700 900123 at home.")
    names = re.findall(r"Dr\. (\[NAME_\d+\])", out)
    assert len(names) == 2 and names[0] == names[1]
    assert out.count("[PHONE_1]") == 2 and "Rask" not in out


def test_speaker_map_and_idempotence(redactor: Redactor) -> None:
    s, _ = make_session()
    red = redactor.redact_session(s)
    m = redactor.speaker_map(s)
    assert set(m) == {"Dr. Hana Novotná", "Pellam Oduya"} and set(m.values()) == set(red.speakers)
    again = redactor.redact_session(red)
    assert [t.text for t in again.turns] == [t.text for t in red.turns]
    assert list(again.speakers) == list(red.speakers)


def test_acronym_organisations_and_clinical_acronyms(redactor: Redactor) -> None:
    out = redactor.redact_text(
        "She gave me the QRX addiction service number. We did CBT group work; the GP surgery rang."
    )
    assert "QRX" not in out and "[ORG_1] addiction service" in out
    assert "CBT group" in out and "GP surgery" in out  # clinical acronyms are not organisations


def test_a_first_name_inside_a_sentence_is_a_name(redactor: Redactor) -> None:
    out = redactor.redact_text("He's retired now, it's just Dennis these days, and he's solid.")
    assert "Dennis" not in out and "[NAME_1]" in out
