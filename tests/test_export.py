"""Exports: ELAN (.eaf, against the EAF 3.0 schema), REFI-QDA (.qdpx, against Project.xsd, offsets slice
back to the utterances), Parquet (read back), timestamped transcripts. Markers come from a keyword stub
instead of the model, so these tests need no model load; the aggregate step is the real one."""

import copy
import csv
import re
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from alliance_nlp.errors import AllianceError
from alliance_nlp.export import FORMATS, export, load_analysed, with_summary
from alliance_nlp.export.eaf import PSEUDO_MS, eaf_bytes
from alliance_nlp.export.qdpx import NS, qdpx_bytes
from alliance_nlp.export.transcript import one_line, render_transcript
from alliance_nlp.ingest import read
from alliance_nlp.labels import LABELS
from alliance_nlp.outputs import utterance_rows, write_outputs
from alliance_nlp.pipeline import Pipeline

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
XSD = Path(__file__).resolve().parent / "data" / "xsd"
KEYWORDS = {
    "goal": ("goal", "want"),
    "task": ("agenda", "diary", "homework", "try"),
    "bond": ("thank", "sounds", "makes sense"),
    "rupture_withdrawal": ("don't know", "whatever", "fine"),
    "rupture_confrontation": ("pointless", "waste", "doesn't work", "<"),
    "repair": ("sorry", "on me", "hear"),
}


def stub_classify(session):
    """Deterministic stand-in for the classifier: a marker wherever one of its keywords occurs."""
    for u in session.utterances:
        t = u.text.lower()
        u.probabilities = {lab: (0.8 if any(k in t for k in ks) else 0.04) for lab, ks in KEYWORDS.items()}
        u.markers = [lab for lab in LABELS if u.probabilities[lab] >= 0.5]
    session.provenance["classify"] = {"model": "keyword-stub"}
    return session


@pytest.fixture(scope="module")
def analysed():
    """Three sessions: timed (the CBT example), the same without times, one with hostile text."""
    prepare = Pipeline.from_names(["diarize"])  # no segment step: it would load spaCy, and records are units
    aggregate = Pipeline.from_names(["aggregate"], provided={"turns", "roles", "markers"})
    timed = aggregate(stub_classify(prepare(read(EXAMPLES / "session_cbt.txt"))))
    untimed = copy.deepcopy(timed)
    untimed.id = "untimed"
    for u in untimed.utterances:
        u.start = u.end = None
    hostile = copy.deepcopy(timed)
    hostile.id = "hostile"
    hostile.turns[1].utterances[0].text = 'Okay <b>&amp;</b> "x"\x00\x0b and\nmore\ttext \U0001f600 é'
    hostile.turns[1].text = ""
    hostile.speakers[hostile.turns[1].speaker].name = 'C: <client> & "co"'
    return [with_summary(s) for s in (timed, untimed, hostile)]


def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD / name)))


def test_eaf_is_valid_and_complete(analysed, tmp_path):
    schema = _schema("EAFv3.0.xsd")
    paths = export(analysed, "eaf", tmp_path)
    assert [p.name for p in paths] == ["session_cbt.eaf", "untimed.eaf", "hostile.eaf"]
    for (session, _), path in zip(analysed, paths):
        doc = etree.parse(str(path))
        assert schema.validate(doc), schema.error_log
        root = doc.getroot()
        assert root.get("VERSION") == "3.0"
        slots = {t.get("TIME_SLOT_ID"): int(t.get("TIME_VALUE")) for t in root.iter("TIME_SLOT")}
        speakers = {u.speaker for u in session.utterances}
        tiers = {t.get("TIER_ID"): t for t in root.iter("TIER")}
        assert len(tiers) == 7 * len(speakers)
        spoken = []
        for t in tiers.values():
            if t.get("PARENT_REF") is None:
                spoken += [
                    (slots[a.get("TIME_SLOT_REF1")], slots[a.get("TIME_SLOT_REF2")], a.findtext("ANNOTATION_VALUE"))
                    for a in t.iter("ALIGNABLE_ANNOTATION")
                ]
        spoken.sort()
        assert [v for _, _, v in spoken] == [one_line(u.text) for u in session.utterances]
        assert all(a < b for a, b, _ in spoken)
        if session.has_times:
            assert spoken[0][0] == round(session.utterances[0].start * 1000)
        else:
            assert [a for a, _, _ in spoken] == [i * PSEUDO_MS for i in range(len(spoken))]
            assert "pseudo" in root.find("HEADER").xpath("string(PROPERTY[@NAME='alliance-nlp:time_axis'])")
        cv = root.find("CONTROLLED_VOCABULARY")
        assert [e.findtext("CVE_VALUE") for e in cv.iter("CV_ENTRY_ML")] == list(LABELS)
        refs = list(root.iter("REF_ANNOTATION"))
        assert len(refs) == sum(len(u.markers) for u in session.utterances)
        assert all(r.get("CVE_REF") == f"cve_{r.findtext('ANNOTATION_VALUE')}" for r in refs)


def test_eaf_reads_back_with_pympi(analysed, tmp_path):
    from pympi.Elan import Eaf

    session, summary = analysed[0]
    path = tmp_path / "one.eaf"
    assert export([analysed[0]], "eaf", path) == [path]
    eaf = Eaf(str(path))
    therapist = next(sp for sp in session.speakers.values() if sp.role == "therapist")
    anns = eaf.get_annotation_data_for_tier(therapist.name)
    assert [a[2] for a in sorted(anns)] == [u.text for u in session.utterances if u.speaker == therapist.id]
    goal_refs = eaf.get_ref_annotation_data_for_tier(f"{therapist.name} / goal")
    assert len(goal_refs) == sum("goal" in u.markers for u in session.utterances if u.speaker == therapist.id)


def test_qdpx_is_valid_and_offsets_slice_back(analysed, tmp_path):
    schema = _schema("Project.xsd")
    path = export(analysed, "qdpx", tmp_path / "project.qdpx")[0]
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names[0] == "project.qde" and all(re.fullmatch(r"sources/[0-9a-f-]{36}\.txt", n) for n in names[1:])
        doc = etree.fromstring(z.read("project.qde"))
        texts = {n: z.read(n).decode("utf-8") for n in names[1:]}
    assert schema.validate(doc), schema.error_log
    ns = {"q": NS}
    codes = {c.get("guid"): c.get("name") for c in doc.iterfind(".//q:Code[@isCodable='true']", ns)}
    assert sorted(codes.values()) == sorted(LABELS)
    sources = doc.findall(".//q:TextSource", ns)
    assert len(sources) == len(analysed)
    for (session, _), src in zip(analysed, sources):
        text = texts["sources/" + src.get("plainTextPath").removeprefix("internal://")]
        assert not text.startswith("\ufeff")
        tagged = [u for u in session.utterances if u.markers]
        sels = src.findall("q:PlainTextSelection", ns)
        assert len(sels) == len(tagged)
        for sel, u in zip(sels, tagged):
            a, b = int(sel.get("startPosition")), int(sel.get("endPosition"))
            assert text[a:b] == one_line(u.text)
            coded = [codes[c.find("q:CodeRef", ns).get("targetGUID")] for c in sel.findall("q:Coding", ns)]
            assert coded == [lab for lab in LABELS if lab in u.markers]
        case = doc.find(f".//q:Case[@name='{src.get('name')}']", ns)
        assert case.find("q:SourceRef", ns).get("targetGUID") == src.get("guid")
        assert len(case.findall("q:VariableValue", ns)) == 12


def test_qdpx_is_reproducible(analysed):
    assert qdpx_bytes(analysed) == qdpx_bytes(analysed)


def test_parquet_reads_back(analysed, tmp_path):
    import pyarrow.parquet as pq

    utt_path, ses_path = export(analysed, "parquet", tmp_path)
    utts = pq.read_table(utt_path).to_pylist()
    expected = [
        {"session": name, **r}
        for (s, _), name in zip(analysed, ("session_cbt", "untimed", "hostile"))
        for r in utterance_rows(s)
    ]
    assert len(utts) == len(expected)
    assert list(utts[0]) == list(expected[0])
    for got, want in zip(utts, expected):
        for k, v in want.items():
            assert got[k] == pytest.approx(v) if isinstance(v, float) else got[k] == v, k
    # every utterances.csv column is there
    write_outputs(analysed[0][0], tmp_path / "res")
    with open(tmp_path / "res" / "utterances.csv", encoding="utf-8") as fh:
        assert set(next(csv.reader(fh))) <= set(utts[0])
    sessions = pq.read_table(ses_path).to_pylist()
    assert [r["session"] for r in sessions] == ["session_cbt", "untimed", "hostile"]
    for row, (s, summary) in zip(sessions, analysed):
        for k in ("goal", "task", "bond", "total"):
            assert row[k] == summary[k]["estimate"] and row[f"{k}_low"] == summary[k]["low"]
        assert row["rupture_episodes"] == summary["ruptures"]["episodes"]
        assert row["utterances"] == len(s.utterances) and row["marker_model"] == "keyword-stub"


def test_txt_is_timestamped_where_times_exist(analysed, tmp_path):
    paths = export(analysed, "txt", tmp_path)
    timed = paths[0].read_text(encoding="utf-8").splitlines()
    assert len(timed) == len(analysed[0][0].turns)
    assert all(re.fullmatch(r"\[\d\d:\d\d:\d\d\] [^:\n]+: .+", line) for line in timed)
    assert timed[0].startswith("[00:00:04] T: Hi, come on in.")
    untimed = paths[1].read_text(encoding="utf-8").splitlines()
    assert all(not line.startswith("[") and ": " in line for line in untimed)
    hostile = paths[2].read_text(encoding="utf-8")
    assert len(hostile.splitlines()) == len(analysed[2][0].turns) and "C- <client>" in hostile
    for session, _ in analysed:
        tr = render_transcript(session)
        assert [tr.text[s.start : s.end] for s in tr.spans] == [one_line(u.text) for u in session.utterances]


def test_export_api_and_errors(analysed, tmp_path):
    assert set(FORMATS) == {"eaf", "qdpx", "parquet", "txt"}
    with pytest.raises(AllianceError, match="unknown export format"):
        export(analysed, "docx", tmp_path)
    with pytest.raises(AllianceError, match="nothing to export"):
        export([], "txt", tmp_path)
    # from a results folder, as `alliance-nlp export RESULTS` will read it
    for session, _ in analysed:
        write_outputs(session, tmp_path / "results" / session.id)
    loaded = load_analysed([tmp_path / "results"])
    assert sorted(s.id for s, _ in loaded) == ["hostile", "session_cbt", "untimed"]
    assert all("total" in summary for _, summary in loaded)
    assert export([s for s, _ in loaded], "qdpx", tmp_path / "out")[0] == tmp_path / "out" / "alliance-nlp.qdpx"
    assert eaf_bytes(*analysed[0]).startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_unclassified_session_exports_too(tmp_path):
    """No classifier run: no markers, no estimates; every format still writes a valid file."""
    import pyarrow.parquet as pq

    session = Pipeline.from_names(["diarize"])(read(EXAMPLES / "session_zoom.vtt"))
    items = [with_summary(session)]
    eaf = export(items, "eaf", tmp_path / "eaf")[0]
    assert _schema("EAFv3.0.xsd").validate(etree.parse(str(eaf)))
    with zipfile.ZipFile(export(items, "qdpx", tmp_path / "p.qdpx")[0]) as z:
        assert _schema("Project.xsd").validate(etree.fromstring(z.read("project.qde")))
    utts = pq.read_table(export(items, "parquet", tmp_path / "pq")[0]).to_pylist()
    assert len(utts) == len(session.utterances) and all(r["p_goal"] is None and r["goal"] is None for r in utts)
    assert export(items, "txt", tmp_path / "t.txt")[0].read_text(encoding="utf-8").count("\n") == len(session.turns)
