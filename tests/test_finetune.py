"""`alliance-nlp finetune`: corrections from the review app turn into a model folder that `analyze --model`
reads; held-out sessions stay apart; the card reports before/after; plain torch only (no peft, nothing from
training/). The base model is loaded once for the module; the shipped examples are tagged by a keyword stub
(the fine-tuning itself uses the real encoder and context layer), and the corrections are synthetic."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alliance_nlp.cli import main
from alliance_nlp.finetune import (
    FinetuneConfig,
    clearly_better,
    finetune,
    fit_calibration,
    load_base_classifier,
    max_f1_threshold,
    split_sessions,
    summary_scores,
)
from alliance_nlp.ingest import read
from alliance_nlp.labels import LABELS
from alliance_nlp.model import load_context, read_config
from alliance_nlp.outputs import write_outputs
from alliance_nlp.pipeline import Pipeline
from alliance_nlp.resources import DEFAULT_MODEL_NAME
from alliance_nlp.review.store import CORRECTIONS_FILE, CorrectionStore, make_record

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
FILES = ["session_cbt.txt", "session_zoom.vtt", "session_otter.txt", "session_export.csv"]
KEYWORDS = {
    "goal": ("goal", "want", "hope"),
    "task": ("agenda", "diary", "homework", "try", "plan"),
    "bond": ("thank", "sounds", "makes sense", "glad"),
    "rupture_withdrawal": ("don't know", "whatever", "fine"),
    "rupture_confrontation": ("pointless", "waste", "doesn't work"),
    "repair": ("sorry", "on me", "fair"),
}
FAST = FinetuneConfig(holdout=0.3, folds=2, priors=(300.0, 30.0), min_positives=2, bootstrap=50)


def keyword_labels(text: str) -> list[str]:
    t = text.lower()
    return [lab for lab in LABELS if any(k in t for k in KEYWORDS[lab])]


@pytest.fixture(scope="module")
def clf():
    return load_base_classifier()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Four shipped examples, diarized and segmented, tagged by a stub, written as analyze writes them; a
    reviewer corrected every utterance to the keyword labels, a second reviewer some of them."""
    out = tmp_path_factory.mktemp("results")
    prepare = Pipeline.from_names(["diarize", "segment"])
    store = CorrectionStore(out / CORRECTIONS_FILE)
    for name in FILES:
        s = prepare(read(EXAMPLES / name))
        for u in s.utterances:
            u.probabilities = {lab: 0.3 for lab in LABELS}
            u.markers = []
        s.provenance["classify"] = {"model": DEFAULT_MODEL_NAME}
        write_outputs(s, out / s.id)
        for i, u in enumerate(s.utterances):
            labs = keyword_labels(u.text)
            store.append(
                make_record(
                    session=s.id,
                    utterance=i,
                    labels=labs,
                    reviewer="alice",
                    source=u.source,
                    speaker=s.role_of(u.speaker),
                    session_file=f"{s.id}/session.json",
                )
            )
            if i % 5 == 0:
                store.append(make_record(session=s.id, utterance=i, labels=labs[:1], reviewer="bob", source=u.source))
    return out


@pytest.fixture(scope="module")
def tuned(clf, results, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tuned"
    said: list[str] = []
    report = finetune(
        [results / CORRECTIONS_FILE], out, classifier=clf, config=FAST, name="test-tuned", log=said.append
    )
    return out, report, said


def test_finetune_writes_a_model_folder_that_loads(clf, tuned, results):
    out, report, said = tuned
    cfg = read_config(out)  # what analyze --model checks
    assert cfg["name"] == "test-tuned" and cfg["labels"] == list(LABELS)
    assert cfg["base_model"] == clf.config["base_model"] and cfg["context"] == clf.config["context"]
    cal = cfg["calibration"]
    assert all(len(cal[k]) == 6 for k in ("logit_offset", "temperature", "threshold"))
    assert all(0 < t < 1 for t in cal["threshold"]) and all(t > 0 for t in cal["temperature"])
    assert cal["logit_offset"] == clf.config["calibration"]["logit_offset"]
    # the adapter is the base model's, byte for byte; the context layer is new and loads
    for f in (clf.path / "adapter").iterdir():
        if f.name != "README.md":
            assert (
                hashlib.sha256(f.read_bytes()).digest()
                == hashlib.sha256((out / "adapter" / f.name).read_bytes()).digest()
            )
    ctx = load_context(out, 384, cfg["context"])
    from alliance_nlp.classify import MarkerClassifier

    tuned_clf = MarkerClassifier(clf.encoder, clf.tokenizer, ctx, cfg, clf.device, path=out)
    session = json.loads((results / "session_cbt" / "session.json").read_text())
    from alliance_nlp.session import Session

    s = tuned_clf(Session.from_dict(session))
    assert all(np.isfinite(list(u.probabilities.values())).all() for u in s.utterances)
    assert s.provenance["classify"]["model"] == "test-tuned"
    assert any("corrected utterances" in m for m in said) and any(m.startswith("wrote") for m in said)


def test_held_out_sessions_are_apart_and_figures_reported(tuned):
    out, report, _ = tuned
    sp = report["split"]
    assert sp["held_out"]["sessions"] and not set(sp["held_out"]["sessions"]) & set(sp["train"]["sessions"])
    assert set(sp["held_out"]["sessions"]) | set(sp["train"]["sessions"]) == {
        "session_cbt",
        "session_zoom",
        "session_otter",
        "session_export",
    }
    h = report["figures"]["held_out"]
    assert h["utterances"] == sp["held_out"]["utterances"] > 0
    for side in ("before", "after"):
        assert set(h[side]["labels"]) == set(LABELS)
        assert 0 <= h[side]["micro_f1"] <= 1 and 0 <= h[side]["exact_match"] <= 1
    assert h["difference"]["micro_f1"]["difference"] == pytest.approx(h["after"]["micro_f1"] - h["before"]["micro_f1"])
    c = report["corrections"]
    assert c["reviewers"] == ["alice", "bob"] and c["files"][0]["name"] == CORRECTIONS_FILE
    assert c["used"] > 0 and c["files"][0]["lines"] > c["used"]  # bob's lines repeat utterances alice did
    assert report["base_model"]["name"] == DEFAULT_MODEL_NAME and report["base_model"]["fingerprint"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["finetune"]["figures"] == json.loads(json.dumps(report["figures"]))
    assert cfg["training"]["data"]["release"]  # what the base model was trained on is still recorded


def test_the_card_says_what_it_was_tuned_on_and_the_figures(tuned):
    out, report, _ = tuned
    card = (out / "README.md").read_text()
    h = report["figures"]["held_out"]
    assert card.startswith("# Model card: test-tuned")
    assert DEFAULT_MODEL_NAME in card and CORRECTIONS_FILE in card and "alice, bob" in card
    assert "## Before and after, on the held-out corrections" in card
    assert f"| macro-F1 | {h['before']['macro_f1']:.3f} | {h['after']['macro_f1']:.3f} |" in card
    assert "non-commercial" in card and "## Limits" in card
    for sid in report["split"]["held_out"]["sessions"]:
        assert f"`{sid}`" in card


def test_soft_targets_when_reviewers_disagree(clf, results, tmp_path):
    from alliance_nlp.finetune import collect

    _, labels, info = collect([results / CORRECTIONS_FILE])
    both = labels["session_cbt"][0]
    assert set(both) == {"alice", "bob"}
    only_alice = collect([results / CORRECTIONS_FILE], reviewers=["alice"])[1]
    assert set(only_alice["session_cbt"][0]) == {"alice"}
    assert info["used"] == sum(len(v) for v in labels.values())


def test_the_context_scope_trains_the_context_layer(clf, results, tmp_path):
    cfg = FinetuneConfig(holdout=0.3, scope="context", epochs=1, folds=2, min_positives=2, bootstrap=20)
    rep = finetune([results / CORRECTIONS_FILE], tmp_path / "ctx", classifier=clf, config=cfg)
    from safetensors.torch import load_file

    new, old = (
        load_file(str(tmp_path / "ctx" / "context.safetensors")),
        load_file(str(clf.path / "context.safetensors")),
    )
    assert set(new) == set(old)
    assert any(not np.allclose(new[k].numpy(), old[k].numpy()) for k in new if k.startswith("blocks."))
    assert "context layer and head" in rep["trained"] and "epochs" in (tmp_path / "ctx" / "README.md").read_text()


def test_calibration_refits_only_what_beats_the_base():
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random((n, 6)) < 0.15).astype(float)
    z = rng.normal(0, 1, (n, 6)) + 3 * y  # informative logits
    base = {"logit_offset": [0.0] * 6, "temperature": [1.0] * 6, "threshold": [0.5] * 6}
    folds = np.arange(n) % 4
    sessions = np.arange(n) // 20
    cal, how = fit_calibration(y, z, base, 5, folds, sessions)
    assert all("positives" in v for v in how.values())
    # a far-off base threshold is replaced; the result separates the classes
    bad = {**base, "threshold": [0.999] * 6}
    cal2, how2 = fit_calibration(y, z, bad, 5, folds, sessions)
    assert all("threshold refitted" in v for v in how2.values())
    assert all(0.05 < t < 0.95 for t in cal2["threshold"])
    # too few positives: the base calibration stays
    y3 = np.zeros((n, 6))
    y3[:2] = 1
    cal3, how3 = fit_calibration(y3, z, bad, 5, folds, sessions)
    assert cal3["threshold"] == bad["threshold"] and all("only 2 positive" in v for v in how3.values())


def test_helpers():
    assert (
        split_sessions({"a": 10, "b": 10, "c": 10, "d": 10}, 0.25, 1)[1]
        and len(split_sessions({"a": 10, "b": 10, "c": 10, "d": 10}, 0.25, 1)[1]) == 1
    )
    assert split_sessions({"a": 10}, 0.25, 1) == (["a"], [])
    assert split_sessions({"a": 10, "b": 5}, 0.0, 1) == (["a", "b"], [])
    assert clearly_better(np.array([1.0, 1.1, 0.9, 1.0]), np.ones(4))
    assert not clearly_better(np.array([1.0, -1.1, 0.9, -1.0]), np.ones(4))
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9])
    t = max_f1_threshold(y, p)
    assert 0.3 < t <= 0.7
    Y = np.eye(6)[[0, 1, 2, 3, 4, 5, 0, 1]]
    s = summary_scores(Y, Y * 0.9, [0.5] * 6)
    assert s["macro_f1"] == 1 and s["micro_f1"] == 1 and s["exact_match"] == 1


def test_cli_errors_are_one_line(results, tmp_path, capsys):
    code = main(["finetune", "--corrections", str(tmp_path / "absent.jsonl"), "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "absent.jsonl" in err and len(err.splitlines()) == 1
    stray = tmp_path / "stray.jsonl"
    stray.write_text(json.dumps(make_record(session="elsewhere", utterance=0, labels=[], reviewer="x")) + "\n")
    code = main(["finetune", "--corrections", str(stray), "--results", str(results), "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no usable corrections" in err and "session not found" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code = main(["finetune", "--corrections", str(results / CORRECTIONS_FILE), "-o", str(tmp_path / "full")])
    assert code == 2 and "not empty" in capsys.readouterr().err


def test_finetune_needs_neither_peft_nor_training_code():
    code = (
        "import sys, alliance_nlp.finetune, alliance_nlp.review.app, alliance_nlp.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('peft', 'training', 'evaluation')]; "
        "assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
