"""Clinical data stays private: owner-only outputs, no leftovers of killed runs, and `analyze --redact`."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from alliance_nlp.cli import main

# invented for this test: every identifier below is made up
TRANSCRIPT = """Therapist: Hello Marguerite, good to see you again. How have things been since the 3rd of March?
Client: Honestly not great. My brother Tobias Quenneville phoned from Dunmore again and we argued.
Therapist: That sounds really hard. You sound worn out by it. What would you like to be different?
Client: I want to stop feeling sick every time his number, 07700 900456, shows up on my phone.
Therapist: That makes sense. Would it be okay if we looked at what happens in those calls, step by step?
Client: Yes, okay. I wrote some of it down, and I emailed it to marguerite.h@example.org last night.
Therapist: Great, let's go through it together. And we can check in with Dr. Ilse Varga at Kestrel Clinic too.
Client: Fine. I suppose. I don't really see the point of that.
Therapist: Fair enough, it's your call. We'll focus on what feels useful to you today.
"""
IDENTIFIERS = [
    "Marguerite",
    "Tobias",
    "Quenneville",
    "Dunmore",
    "07700 900456",
    "marguerite.h@example.org",
    "Ilse",
    "Varga",
]


@pytest.fixture()
def transcript(tmp_path) -> Path:
    f = tmp_path / "in" / "quenneville_marguerite.txt"
    f.parent.mkdir()
    f.write_text(TRANSCRIPT, encoding="utf-8")
    return f


def _modes(root: Path) -> list[tuple[Path, int]]:
    return [(p, stat.S_IMODE(p.stat().st_mode)) for p in [root, *root.rglob("*")]]


def test_outputs_are_owner_only_unless_asked(transcript, tmp_path):
    out = tmp_path / "out"
    assert main(["analyze", str(transcript.parent), "-o", str(out), "-q", "--workers", "1"]) == 0
    modes = _modes(out)
    assert len(modes) > 5
    assert all(m & 0o077 == 0 for _, m in modes), [(str(p), oct(m)) for p, m in modes if m & 0o077]
    old = os.umask(0o022)
    try:
        shared = tmp_path / "shared"
        assert main(["--shared-output", "analyze", str(transcript), "-o", str(shared), "-q"]) == 0
        assert stat.S_IMODE((shared / "session.json").stat().st_mode) == 0o644
        assert os.umask(0o022) == 0o022  # the CLI gave the caller its umask back
    finally:
        os.umask(old)


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(transcript, tmp_path):
    out = tmp_path / "single"
    leftover = out / ".session.json.k1ll3d.tmp"
    out.mkdir()
    leftover.write_text("half a transcript")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    assert main(["analyze", str(transcript), "-o", str(out), "-q"]) == 0
    assert not leftover.exists() and (out / "session.json").is_file()
    batch = tmp_path / "batch"
    assert main(["analyze", str(transcript.parent), "-o", str(batch), "-q", "--workers", "1"]) == 0
    inner = next(p for p in batch.iterdir() if p.is_dir()) / ".utterances.csv.x.tmp"
    inner.write_text("rows")
    assert main(["analyze", str(transcript.parent), "-o", str(batch), "-q", "--workers", "1"]) == 0
    assert not inner.exists()


@pytest.mark.parametrize("flag", ["--redact", "--redact-input"])
def test_analyze_redact_leaves_no_identifier_in_any_output(transcript, tmp_path, flag):
    out = tmp_path / flag.strip("-")
    args = ["analyze", str(transcript.parent), "-o", str(out), "-q", "--workers", "1", flag]
    assert main(args) == 0
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1 and folders[0].name.startswith("session-")  # not the file's name
    session_files = [p for p in folders[0].rglob("*") if p.is_file()]
    assert {"session.json", "utterances.csv", "summary.json", "report.html"} <= {p.name for p in session_files}
    for p in session_files:
        text = p.read_text(encoding="utf-8")
        for ident in IDENTIFIERS:
            assert ident not in text, (p.name, ident)
    text = (folders[0] / "session.json").read_text(encoding="utf-8")
    assert "[NAME_" in text and "[PHONE_" in text and "[EMAIL_" in text
    exports = tmp_path / "exports"
    assert main(["export", str(out), "--to", "txt", "-o", str(exports)]) == 0
    for p in exports.rglob("*"):
        if p.is_file():
            assert not any(ident in p.read_text(encoding="utf-8") for ident in IDENTIFIERS)


def test_redact_input_keeps_a_therapist_given_by_name(tmp_path):
    f = tmp_path / "named.txt"
    f.write_text(
        "Halvard Benedikz: Hi, what would you like to focus on today?\n"
        "Orla Finnegan-Stroud: Mostly the panic at work, I think.\n"
        "Halvard Benedikz: Okay. What happens when it starts?\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert main(["analyze", str(f), "-o", str(out), "-q", "--redact-input", "--therapist", "Halvard Benedikz"]) == 0
    text = (out / "session.json").read_text(encoding="utf-8")
    assert "Halvard" not in text and "Orla" not in text
    from alliance_nlp.session import Session

    s = Session.load(out / "session.json")
    roles = {sp.id: (sp.role, sp.role_method) for sp in s.speakers.values()}
    therapist = [sid for sid, (role, method) in roles.items() if role == "therapist"]
    assert len(therapist) == 1 and therapist[0].startswith("[NAME_") and roles[therapist[0]][1] == "user"


def test_redact_and_redact_input_together_is_a_usage_error(transcript, tmp_path, capsys):
    assert main(["analyze", str(transcript), "-o", str(tmp_path / "o"), "--redact", "--redact-input"]) == 2
    assert "choose one" in capsys.readouterr().err
