"""Annotation release v2.0: a fixed, double-coded test set, one codebook, splits the loader exposes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.annotations import read_codes
from training.dataset import release_splits

V2 = Path(__file__).resolve().parents[1] / "data" / "annotations" / "v2"
RELEASE = V2 / "alliance_markers.v2.0.jsonl"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((V2 / "manifest.json").read_text())


def test_manifest_records_codebook_coders_and_every_split(manifest):
    assert manifest["version"] == "2.0" and manifest["codebook"] == "2.0"
    records = [json.loads(x) for x in RELEASE.read_text().splitlines()]
    assert len(records) == manifest["utterances"]
    sessions = {f"{r['corpus']} {r['session']}" for r in records}
    assert sessions == set(manifest["splits"]) == set(manifest["coded_by"])
    assert {r["coder"] for r in records} <= set(manifest["coders"]) | {"adjudicated"}
    assert all(set(r) == {"corpus", "session", "utterance", "speaker", "labels", "coder"} for r in records[:500])


def test_the_test_set_is_fixed_double_coded_adjudicated_and_large_enough(manifest):
    assignments = json.loads((V2 / "assignments.json").read_text())
    test = set(assignments["test_sessions"])
    splits = release_splits(RELEASE)
    assert splits is not None
    assert {f"{c} {s}" for (c, s), v in splits.items() if v == "test"} == test
    assert {k.split()[0] for k in test} == {"annomi", "esconv"}
    # every test session has its adjudicated file and both independent codings
    pairs = {s: r["coders"] for r in assignments["reliability"] for s in r["sessions"]}
    assert set(pairs) == test
    for s, (c1, c2) in pairs.items():
        corpus, sid = s.split(" ", 1)
        name = f"{corpus}__{sid.replace(':', '-')}.txt"
        a, b = read_codes(V2 / "raw" / c1 / name), read_codes(V2 / "raw" / c2 / name)
        adj = read_codes(V2 / "adjudicated" / name)
        assert set(a) == set(b) == set(adj)
    records = [json.loads(x) for x in RELEASE.read_text().splitlines()]
    in_test = [r for r in records if f"{r['corpus']} {r['session']}" in test]
    assert len(in_test) >= 4500 and all(r["coder"] == "adjudicated" for r in in_test)
    for lab in ("goal", "task", "bond", "rupture_withdrawal", "rupture_confrontation", "repair"):
        assert sum(lab in r["labels"] for r in in_test) >= 70, lab
    assert all(v["kappa"] >= 0.70 for v in manifest["reliability"]["labels"].values())


def test_no_session_or_group_is_in_two_splits(manifest):
    from training.corpora import read_corpus

    groups: dict[tuple[str, str], set[str]] = {}
    corpora = {c: read_corpus(c) for c in ("annomi", "esconv")}
    for key, split in manifest["splits"].items():
        corpus, sid = key.split(" ", 1)
        groups.setdefault((corpus, corpora[corpus][sid].group), set()).add(split)
    assert all(len(v) == 1 for v in groups.values())
