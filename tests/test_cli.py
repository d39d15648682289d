"""The command line: ingest, analyze (single file and batch), exit codes, outputs."""

import csv
import json
from pathlib import Path

import pytest

from alliance_nlp.cli import main
from alliance_nlp.session import Session

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
BASE_COLUMNS = ["source", "turn", "speaker", "role", "role_confidence", "start", "end", "text"]
FAST = ["--steps", "diarize,segment"]


def test_ingest_writes_round_trippable_json(tmp_path):
    out = tmp_path / "s.json"
    assert main(["ingest", str(EXAMPLES / "session_cbt.txt"), "-o", str(out)]) == 0
    s = Session.load(out)
    assert len(s.turns) > 20 and Session.from_dict(s.to_dict()).to_dict() == s.to_dict()


def test_analyze_writes_the_three_outputs(tmp_path):
    assert main(["analyze", str(EXAMPLES / "session_cbt.txt"), "-o", str(tmp_path), *FAST, "-q"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "utterances.csv", encoding="utf-8")))
    assert set(BASE_COLUMNS) <= set(rows[0])
    summary = json.loads((tmp_path / "summary.json").read_text())
    roles = {sp["role"] for sp in summary["speakers"]}
    assert roles == {"therapist", "client"}
    assert abs(sum(sp["talk_share"] for sp in summary["speakers"]) - 1) < 1e-3
    assert summary["counts"]["utterances"] == len(rows)
    s = Session.load(tmp_path / "session.json")
    for t in s.turns:
        for u in t.utterances:
            assert t.text[u.char_start : u.char_end] == u.text


def test_therapist_override(tmp_path):
    assert main(["analyze", str(EXAMPLES / "session_zoom.vtt"), "-o", str(tmp_path), *FAST, "-q"]) == 0
    speakers = json.loads((tmp_path / "summary.json").read_text())["speakers"]
    client = next(sp for sp in speakers if sp["role"] == "client")
    assert (
        main(
            [
                "analyze",
                str(EXAMPLES / "session_zoom.vtt"),
                "-o",
                str(tmp_path / "o"),
                *FAST,
                "-q",
                "--therapist",
                client["id"],
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "o" / "summary.json").read_text())["speakers"]
    flipped = next(sp for sp in again if sp["id"] == client["id"])
    assert flipped["role"] == "therapist" and flipped["role_method"] == "user"


def test_batch_goes_on_past_a_broken_file(tmp_path, capsys):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.txt").write_text((EXAMPLES / "session_cbt.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (inp / "b.json").write_text('{"segments": [ {"start": 1.0, ')  # truncated
    (inp / "c.srt").write_text((EXAMPLES / "session_teams.srt").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["analyze", str(inp), "-o", str(out), *FAST, "-q"]) == 1
    report = json.loads((out / "batch_report.json").read_text())
    assert report["processed"] == 2 and len(report["failed"]) == 1
    assert "b.json" in report["failed"][0]["file"]
    assert (out / "a" / "summary.json").is_file() and (out / "c" / "summary.json").is_file()
    assert "b.json" in capsys.readouterr().err


def test_single_bad_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "x.qqq"
    bad.write_bytes(b"\x00\x01\x02garbage")
    assert main(["analyze", str(bad), "-o", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.qqq" in err[0]
    assert not (tmp_path / "o" / "session.json").exists()


def test_reader_options_from_the_command_line(tmp_path):
    f = tmp_path / "odd.csv"
    f.write_text("Who;Said\nT;How are you today?\nC;Not great, honestly.\n")
    out = tmp_path / "s.json"
    assert (
        main(["ingest", str(f), "--option", "columns=speaker:Who,text:Said", "--option", "delimiter=;", "-o", str(out)])
        == 0
    )
    s = Session.load(out)
    assert [t.speaker for t in s.turns] == ["T", "C"]
    assert main(["ingest", str(f), "--option", "nonsense"]) == 2


def test_full_pipeline_on_the_shipped_example(tmp_path):
    """analyze with every stage: marker columns, estimates with intervals, episodes, trajectory."""
    from alliance_nlp.classify import default_model_path

    if not (default_model_path() / "config.json").is_file():
        pytest.skip("shipped classifier not present")
    assert main(["analyze", str(EXAMPLES / "session_cbt.txt"), "-o", str(tmp_path), "-q"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "utterances.csv", encoding="utf-8")))
    labels = ["goal", "task", "bond", "rupture_withdrawal", "rupture_confrontation", "repair"]
    for r in rows:
        for lab in labels:
            assert 0.0 <= float(r[f"p_{lab}"]) <= 1.0 and r[lab] in ("0", "1")
    summary = json.loads((tmp_path / "summary.json").read_text())
    for k in ("goal", "task", "bond", "total"):
        est = summary[k]
        assert 1.0 <= est["low"] <= est["estimate"] <= est["high"] <= 5.0
    assert isinstance(summary["episodes"], list) and summary["trajectory"]["by"] == "time"
    assert len(summary["trajectory"]["windows"]) >= 4  # ~21 minutes in 5-minute windows
