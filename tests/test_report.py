"""The HTML session report and batch index: content, self-containment, escaping of hostile transcripts,
graceful output without a classifier, and size. One real model run per module (shipped example)."""

import base64
import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
from lxml import html as lhtml

from alliance_nlp.ingest import read
from alliance_nlp.labels import LABELS
from alliance_nlp.outputs import summarize, write_outputs
from alliance_nlp.pipeline import Pipeline
from alliance_nlp.report import collect_entries, render_index, render_report, safe_json, write_index, write_report

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
HOSTILE_TEXT = '<script>alert("x")</script> and "><img src=x onerror=alert(1)> &amp; </script><!--'
HOSTILE_NAME = '"><img src=x onerror=alert(2)></script>'


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.from_names()


@pytest.fixture(scope="module")
def analysed(pipe):
    session = pipe(read(EXAMPLES / "session_cbt.txt"))
    return session, summarize(session)


def _doc(text: str):
    return lhtml.document_fromstring(text.encode("utf-8"))


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_report_shows_estimates_plots_episodes_and_transcript(analysed):
    session, summary = analysed
    doc = _doc(render_report(session, summary))
    for sec in ("estimates", "trajectory", "timeline", "episodes", "transcript"):
        assert doc.get_element_by_id(sec) is not None
    est = doc.get_element_by_id("estimates").text_content()
    for k in ("goal", "task", "bond", "total"):
        e = summary[k]
        assert f"{e['estimate']:.2f}" in est and f"{e['low']:.2f}–{e['high']:.2f}" in est
    assert summary["estimate_method"]["mapping"] in est and "alliance-markers-v2" in est
    assert "models/alliance-markers-v2/README.md" in est and "Limits and known failure modes" in est
    # trajectory: one linked point per window, each to the window's first utterance
    traj = doc.get_element_by_id("trajectory")
    links = traj.xpath(".//svg//a/@href")
    assert links == [f"#u-{w['utt_start']}" for w in summary["trajectory"]["windows"]]
    # timeline: one mark per (utterance, marker)
    marks = doc.get_element_by_id("timeline").xpath(".//*[local-name()='a'][starts-with(@href, '#u-')]")
    assert len(marks) == sum(len(u.markers) for u in session.utterances)
    # transcript: every utterance, with its markers as chips and its probabilities
    rows = doc.xpath("//ol[@id='utts']/li")
    assert [r.get("id") for r in rows] == [f"u-{i}" for i in range(len(session.utterances))]
    for r, u in zip(rows, session.utterances):
        assert r.xpath("string(.//span[@class='tx'])").startswith(u.text)
        assert sorted(r.get("data-m").split()) == sorted(u.markers)
        assert len(r.xpath(".//span[@class='probs']/i")) == len(LABELS)
    # episodes: each with its facts, badges, context and a jump to its first utterance
    eps = summary["episodes"]
    assert eps, "the example session has rupture episodes"
    for e in eps:
        art = doc.get_element_by_id(f"ep-{e['index']}")
        text = art.text_content()
        assert ("not repaired" not in text) == e["repaired"]
        assert {True: "resolved", False: "not resolved", None: "resolution unknown"}[e["resolved"]] in text
        assert art.xpath(".//a[@class='jump']/@href") == [f"#u-{e['start_utterance']}"]
        assert art.xpath(".//ol/li")


def test_report_is_self_contained_and_pinned_by_csp(analysed):
    text = render_report(*analysed)
    doc = _doc(text)
    assert not doc.xpath("//*[@src]"), "nothing is loaded from anywhere"
    assert not doc.xpath("//link") and "@import" not in text and "url(" not in text
    hrefs = doc.xpath("//@href")
    assert hrefs and all(h.startswith("#") for h in hrefs)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text.replace('xmlns="http://www.w3.org/2000/svg"', ""))
    csp = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")[0]
    assert "default-src 'none'" in csp
    style = doc.xpath("//style")[0].text
    script = [s for s in doc.xpath("//script") if s.get("type") is None][0].text
    assert f"style-src {_csp_hash(style)}" in csp and f"script-src {_csp_hash(script)}" in csp
    assert "@media print" in style


def test_hostile_transcript_stays_text(analysed):
    session, _ = analysed
    s = copy.deepcopy(session)
    s.id = "session</script><script>alert(3)</script>"
    s.utterances[0].text = HOSTILE_TEXT
    next(iter(s.speakers.values())).name = HOSTILE_NAME
    summary = summarize(s)
    text = render_report(s, summary)
    doc = _doc(text)
    assert not doc.xpath("//img") and not doc.xpath("//*[@onerror]")
    scripts = doc.xpath("//script")
    assert len(scripts) == 2 and scripts[0].get("type") == "application/json"
    assert "alert" not in scripts[1].text
    assert doc.get_element_by_id("u-0").xpath("string(.//span[@class='tx'])").startswith(HOSTILE_TEXT)
    assert HOSTILE_NAME in doc.get_element_by_id("transcript").text_content()
    assert doc.xpath("string(//title)") == f"Alliance report: {s.id}"
    data = json.loads(scripts[0].text)
    assert data["summary"]["session"] == s.id and HOSTILE_NAME in json.dumps(data, ensure_ascii=False)


def test_safe_json_cannot_close_its_script_block():
    obj = {"a": "</script><!-- <script>", "b": "&\u2028\u2029", "c": [1.5, None]}
    out = safe_json(obj)
    assert not set(out) & set("<>&\u2028\u2029")
    assert json.loads(out) == obj


def test_report_without_classifier_or_estimates():
    s = Pipeline.from_names(["diarize", "segment"])(read(EXAMPLES / "session_zoom.vtt"))
    doc = _doc(render_report(s))
    assert "not estimated" in doc.get_element_by_id("estimates").text_content()
    assert "did not run" in doc.get_element_by_id("trajectory").text_content()
    assert "classifier did not run" in doc.get_element_by_id("transcript").text_content()
    assert len(doc.xpath("//ol[@id='utts']/li")) == len(s.utterances)
    assert not doc.xpath("//span[@class='probs']")


def test_report_for_600_utterances_is_under_1_5_mb(analysed):
    session, _ = analysed
    big = copy.deepcopy(session)
    turns, k = [], 0
    while sum(len(t.utterances) for t in turns) < 600:
        for t in copy.deepcopy(session.turns):
            for u in t.utterances:
                u.start = None if u.start is None else u.start + 1300 * k
                u.end = None if u.end is None else u.end + 1300 * k
            turns.append(t)
        k += 1
    big.turns = turns
    caps = {"turns", "roles", "units", "markers"}
    big = Pipeline.from_names(["aggregate"], provided=caps)(big)
    assert len(big.utterances) >= 600 and len(summarize(big)["episodes"]) >= 6
    size = len(render_report(big).encode("utf-8"))
    assert size < 1.5 * 1024 * 1024, size


def test_write_outputs_writes_the_report(analysed, tmp_path):
    session, _ = analysed
    paths = write_outputs(session, tmp_path)
    assert paths["report"] == tmp_path / "report.html" and paths["report"].is_file()
    assert write_report(session, tmp_path / "other.html").is_file()


def test_index_links_reports_and_draws_courses(analysed, tmp_path):
    session, _ = analysed
    for i in range(3):
        s = copy.deepcopy(session)
        s.id = f"client1_s{i + 1}"
        write_outputs(s, tmp_path / s.id)
    s = copy.deepcopy(session)
    s.id = "other"
    write_outputs(s, tmp_path / "other")
    (tmp_path / "batch_report.json").write_text(
        json.dumps(
            {"processed": 4, "failed": [{"file": "in/bad<b>.json", "error": "bad <img src=x onerror=alert(1)>"}]}
        )
    )
    entries, failures = collect_entries(tmp_path)
    assert len(entries) == 4 and len(failures) == 1
    only, _ = collect_entries(tmp_path, folders=[tmp_path / "other"])
    assert [(e["session"], e["href"]) for e in only] == [("other", "other/report.html")]
    (tmp_path / "clients.csv").write_text(
        "session,client,order\n" + "".join(f"client1_s{i},client 1,{i}\n" for i in (3, 1, 2)) + "other,client 2,1\n"
    )
    path = write_index(tmp_path, clients=tmp_path / "clients.csv")
    doc = _doc(path.read_text(encoding="utf-8"))
    rows = doc.xpath("//table[@id='sessions']/tbody/tr")
    assert len(rows) == 5 and "failed" in rows[-1].get("class")
    for href in doc.xpath("//table[@id='sessions']//a/@href"):
        if not href.startswith("#"):
            assert (tmp_path / href).is_file()
    assert doc.xpath("//table[@id='sessions']/thead//th[@data-type='num']/button")
    total = f"{summarize(session)['total']['estimate']:.2f}"
    assert total in rows[0].text_content()
    assert not doc.xpath("//img") and "bad <img src=x onerror=alert(1)>" in doc.text_content()
    courses = doc.get_element_by_id("courses")
    assert len(courses.xpath(".//figure")) == 1 and "client 1: stable" in courses.text_content()
    assert len(doc.get_element_by_id("distributions").xpath(".//svg")) == 5
    # no mapping: no courses, and a note saying why
    assert "No client mapping" in render_index(entries, failures)


def test_report_shows_marker_indices_and_says_when_an_interval_is_cut(analysed):
    session, summary = analysed
    doc = _doc(render_report(session, summary))
    table = doc.xpath("//table[@class='indices']")
    assert table and "per 100 utterances" in table[0].text_content()
    rows = {
        r.xpath("./th")[0].text_content(): [c.text_content() for c in r.xpath("./td")]
        for r in table[0].xpath(".//tbody/tr")
    }
    assert set(rows) == {"Goal", "Task", "Bond", "Rupture", "Repair"}
    assert rows["Task"][0] == f"{summary['indices']['task']['value']:.1f}"
    cut = [k for k in ("goal", "task", "bond", "total") if summary[k]["bound"] == "high"]
    text = doc.text_content()
    assert text.count("cut at 5") == len(cut)
