"""Folder runs: manifest and resume, the run lock, atomic session outputs, SIGKILL and SIGINT midway,
parallel workers and Dask giving the outputs of a sequential run, precision choice, light start-up.

Kept fast: tiny invented sessions; the shipped model only where the classifier matters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alliance_nlp.batch import PipelineSpec, analyze, default_workers
from alliance_nlp.cli import main
from alliance_nlp.errors import ModelError, UsageError
from alliance_nlp.manifest import LOCK, MANIFEST, STAMP, Manifest, RunLock, session_folder

ROOT = Path(__file__).resolve().parents[1]
FAST = PipelineSpec(("diarize", "segment"))
LINES = [
    "How has the week been since we last met?",
    "Harder than I hoped, honestly.",
    "What made it hard?",
    "Work, mostly. And I stopped the walks.",
    "Would it help to look at the walks together?",
    "Maybe. I could try Tuesday again.",
]
OUTPUTS = ("session.json", "utterances.csv", "summary.json", "report.html")


def tiny_folder(root: Path, n: int, lines: int = 4) -> Path:
    folder = root / "in"
    folder.mkdir(parents=True)
    for i in range(n):
        body = "\n".join(
            f"{'Therapist' if k % 2 == 0 else 'Client'}: {LINES[(i + k) % len(LINES)]}" for k in range(lines)
        )
        (folder / f"s{i:03d}.txt").write_text(body + f"\nClient: Session {i}.\n", encoding="utf-8")
    return folder


def records(out: Path) -> list[dict]:
    return [r for r in map(json.loads, (out / MANIFEST).read_text().splitlines()) if "input" in r]


# ---- resume -----------------------------------------------------------------------------------
def test_rerun_skips_done_sessions_and_redoes_changed_ones(tmp_path):
    inp, out = tiny_folder(tmp_path, 5), tmp_path / "out"
    first = analyze([inp], out, FAST)
    assert first.processed == 5 and first.skipped == 0 and not first.failed
    assert all((out / f"s{i:03d}" / STAMP).is_file() for i in range(5))
    again = analyze([inp], out, FAST)
    assert again.processed == 0 and again.skipped == 5
    (inp / "s002.txt").write_text("Therapist: A changed session.\nClient: Yes.\n", encoding="utf-8")
    changed = analyze([inp], out, FAST)
    assert changed.processed == 1 and changed.skipped == 4 and changed.outputs == [str(out / "s002")]
    assert "changed" in (out / "s002" / "session.json").read_text()
    other = analyze([inp], out, PipelineSpec(("diarize", "segment"), {"segment": {"max_chars": 300}}))
    assert other.processed == 5, "another pipeline fingerprint redoes every session"
    assert analyze([inp], out, FAST, force=True).processed == 5
    recs = records(out)  # compacted: one record per input
    assert len(recs) == 5 and {r["status"] for r in recs} == {"done"}
    assert {"input", "output", "sha256", "fingerprint", "status", "error", "time", "seconds"} <= set(recs[0])
    report = json.loads((out / "batch_report.json").read_text())
    assert report["processed"] == 5 and report["fingerprint"] == recs[0]["fingerprint"]


def test_a_failed_input_is_recorded_and_retried(tmp_path, capsys):
    inp, out = tiny_folder(tmp_path, 2), tmp_path / "out"
    (inp / "broken.json").write_text('{"segments": [ {"start": 1.0, ')
    assert main(["analyze", str(inp), "-o", str(out), "--steps", "diarize,segment", "-q"]) == 1
    rec = {Path(r["input"]).name: r for r in records(out)}
    assert rec["broken.json"]["status"] == "failed" and "broken.json" in rec["broken.json"]["error"]
    (inp / "broken.json").write_text('[{"speaker": "T", "text": "Fixed now."}]')
    assert main(["analyze", str(inp), "-o", str(out), "--steps", "diarize,segment", "-q"]) == 0
    report = json.loads((out / "batch_report.json").read_text())
    assert report["processed"] == 1 and report["skipped"] == 2


def test_a_committed_session_without_its_manifest_record_is_not_redone(tmp_path):
    """Killed between the rename (the commit) and the manifest record: the folder's stamp counts."""
    inp, out = tiny_folder(tmp_path, 3), tmp_path / "out"
    analyze([inp], out, FAST)
    (out / MANIFEST).write_text((out / MANIFEST).read_text().splitlines()[0] + '\n{"input": "torn')
    again = analyze([inp], out, FAST)
    assert again.processed == 0 and again.skipped == 3
    assert sum(r.get("recovered", False) for r in records(out)) == 3


# ---- atomic outputs and the lock -----------------------------------------------------------------
def test_session_outputs_appear_whole_or_not_at_all(tmp_path):
    with pytest.raises(RuntimeError):
        with session_folder(tmp_path, "s", {"sha256": "x"}) as tmp:
            (tmp / "session.json").write_text("{}")
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []
    for text in ("first", "second"):  # replacing an older folder
        with session_folder(tmp_path, "s", {"sha256": text}) as tmp:
            (tmp / "session.json").write_text(text)
    assert (tmp_path / "s" / "session.json").read_text() == "second"
    assert json.loads((tmp_path / "s" / STAMP).read_text())["sha256"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_a_live_run_holds_the_folder_and_a_dead_one_does_not(tmp_path, capsys):
    inp, out = tiny_folder(tmp_path, 1), tmp_path / "out"
    (inp / "s001.txt").write_text("Therapist: Hello.\nClient: Hi.\n")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from alliance_nlp.manifest import RunLock; "
            "lock = RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["analyze", str(inp), "-o", str(out), "--steps", "diarize,segment", "-q"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "another analyze run" in err and f"pid {holder.pid}" in err
        with pytest.raises(UsageError):
            RunLock(out).acquire()
    finally:
        holder.kill()  # SIGKILL: the kernel drops its lock, the lock file stays
        holder.wait()
    assert (out / LOCK).exists()
    assert main(["analyze", str(inp), "-o", str(out), "--steps", "diarize,segment", "-q"]) == 0


# ---- killed midway ------------------------------------------------------------------------------
def _start(inp: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "alliance_nlp",
        "analyze",
        str(inp),
        "-o",
        str(out),
        "-q",
        "--batch-size",
        "1",
        "--workers",
        "1",
        *extra,
    ]
    # a test run started in the background (nohup, `&`) has SIGINT ignored, and a child would inherit
    # that and never see the Ctrl-C this test sends: give the child the default disposition
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_done(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.stderr.read()}")
        if (out / MANIFEST).is_file() and (out / MANIFEST).read_text().count('"done"') >= n:
            return
        time.sleep(0.02)
    pytest.fail("the run made no progress")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_run_killed_midway_is_finished_by_a_rerun_without_redoing_any_session(tmp_path, sig):
    """SIGKILL (or Ctrl-C) after a few sessions: only complete sessions exist; the rerun does the rest,
    none twice (the folders the first run finished are untouched), none lost."""
    n = 24
    inp, out = tiny_folder(tmp_path, n, lines=2), tmp_path / "out"
    proc = _start(inp, out, "--steps", "diarize,segment,classify")
    _wait_for_done(out, 3, proc)
    os.kill(proc.pid, sig)
    rc = proc.wait(timeout=60)
    if sig == signal.SIGINT:
        assert rc == 130, proc.stderr.read()
        report = json.loads((out / "batch_report.json").read_text())
        assert report["interrupted"] is True and report["processed"] >= 3
    finished = {
        p.name: (p / STAMP).stat().st_mtime_ns for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")
    }
    assert len(finished) >= 3
    for name in finished:  # whatever exists is complete
        assert all((out / name / f).is_file() for f in OUTPUTS), name
    assert (
        main(["analyze", str(inp), "-o", str(out), "-q", "--steps", "diarize,segment,classify", "--workers", "1"]) == 0
    )
    report = json.loads((out / "batch_report.json").read_text())
    assert report["skipped"] == len(finished) and report["processed"] == n - len(finished)
    for name, mtime in finished.items():
        assert (out / name / STAMP).stat().st_mtime_ns == mtime, f"{name} was analysed twice"
    sessions = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert sessions == [f"s{i:03d}" for i in range(n)], "leftover temporary folders or lost sessions"
    assert all((out / s / f).is_file() for s in sessions for f in OUTPUTS)
    recs = records(out)
    assert len(recs) == n and all(r["status"] == "done" for r in recs)


# ---- parallel and cluster runs give the sequential outputs ------------------------------------------
def _same_outputs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir() if p.is_dir())
    assert names == sorted(p.name for p in b.iterdir() if p.is_dir()) and names
    for n in names:
        for f in OUTPUTS:
            assert (a / n / f).read_bytes() == (b / n / f).read_bytes(), f"{n}/{f} differs"


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    inp = tiny_folder(root, 6, lines=5)
    report = analyze([inp], root / "out", PipelineSpec(), batch_size=2, workers=1)
    assert report.processed == 6 and report.precision == "fp32"
    return inp, root / "out"


def test_two_workers_give_the_outputs_of_a_sequential_run(sequential, tmp_path):
    inp, seq = sequential
    report = analyze([inp], tmp_path / "out", PipelineSpec(), batch_size=2, workers=2)
    assert report.processed == 6 and report.workers == 2 and report.threads_per_worker >= 1
    _same_outputs(seq, tmp_path / "out")


def test_dask_local_cluster_gives_the_outputs_of_a_sequential_run(sequential, tmp_path):
    pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed (pip install '.[cluster]')")
    inp, seq = sequential
    report = analyze([inp], tmp_path / "out", PipelineSpec(), batch_size=2, engine="dask", workers=2)
    assert report.processed == 6 and report.engine == "dask"
    _same_outputs(seq, tmp_path / "out")
    assert analyze([inp], tmp_path / "out", PipelineSpec(), batch_size=2, engine="dask", workers=2).skipped == 6


# ---- precision, workers, start-up ------------------------------------------------------------------
def test_precision_auto_follows_the_cpu_and_the_gate(tmp_path):
    from alliance_nlp import precision as prec

    model = tmp_path / "m"
    (model / "adapter").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    gate = tmp_path / "gate.json"
    assert prec.preferred_order(frozenset({"avx2", "fma"})) == []
    assert prec.preferred_order(frozenset({"avx512_vnni"})) == ["int8"]
    assert prec.preferred_order(frozenset({"amx_bf16", "amx_int8"}))[0] == "bf16"
    assert prec.choose(model, lambda p: "onnxruntime", frozenset({"avx2"}))[0] == "fp32"
    assert prec.choose(model, lambda p: "onnxruntime", frozenset({"avx512_vnni"}))[0] == "fp32"  # not gated
    gate.write_text(
        json.dumps(
            {
                "format": prec.GATE_FORMAT,
                "models": {
                    prec.model_digest(model): {
                        "results": {
                            "int8-onnxruntime": {"passed": True, "agreement": 0.995, "mean_abs_diff": 0.004},
                            "bf16-torch": {"passed": False, "agreement": 0.97, "mean_abs_diff": 0.02},
                        }
                    }
                },
            }
        )
    )
    orig = prec.gate_file
    prec.gate_file = lambda: gate
    try:
        assert prec.choose(model, lambda p: "onnxruntime", frozenset({"avx512_vnni"}))[0] == "int8"
        assert prec.choose(model, lambda p: "torch", frozenset({"amx_bf16"}))[0] == "fp32"
        assert prec.check_offered(model, "int8", "onnxruntime") is None
        assert "failed the accuracy gate" in prec.check_offered(model, "bf16", "torch")
    finally:
        prec.gate_file = orig


def test_a_reduced_precision_that_did_not_pass_the_gate_is_refused(tmp_path, monkeypatch):
    from alliance_nlp import precision as prec
    from alliance_nlp.classify import resolve_settings

    monkeypatch.setattr(prec, "gate_file", lambda: tmp_path / "absent.json")
    with pytest.raises(ModelError, match="has not passed the accuracy gate"):
        resolve_settings(precision="int8")
    assert resolve_settings(precision="auto")[0] == "fp32"


def test_default_workers_from_the_cores():
    assert default_workers(3, 8, cores=16) == 1  # too small to repay starting workers
    assert default_workers(200, 8, cores=2) == 2
    assert default_workers(200, 8, cores=1) == 1
    assert default_workers(40, 8, cores=16) == 5  # no more workers than groups


def test_reading_and_a_short_analysis_never_import_torch_spacy_or_scipy(tmp_path):
    f = tmp_path / "two.txt"
    f.write_text("Therapist: How was your week?\nClient: Hard, but I tried the walks.\n")
    code = (
        "import sys; from alliance_nlp.cli import main; "
        f"assert main(['analyze', {str(f)!r}, '-o', {str(tmp_path / 'o')!r}, '-q']) == 0; "
        "print(sorted(m for m in ('torch', 'transformers', 'spacy', 'scipy', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["pipeline"]["classify"]["precision"] in ("fp32", "bf16", "int8")
    assert summary["pipeline"]["classify"]["runtime"] == "onnxruntime"


def test_manifest_ignores_a_torn_last_line(tmp_path):
    (tmp_path / MANIFEST).write_text('{"format": "x"}\n{"input": "a", "status": "done"}\n{"input": "b", "sta')
    m = Manifest(tmp_path).load()
    assert set(m.latest) == {"a"}
    m.append({"input": "c", "status": "done"})
    m.close(compact=False)
    assert set(Manifest(tmp_path).load().latest) == {"a", "c"}
