"""Coder files, agreement statistics, and the released standoff annotations."""
import json
from pathlib import Path

import pytest

from alliance_nlp.data.annotations import ROOT, RELEASE_NAME, agreement, cohen_kappa, read_codes
from alliance_nlp.labels import LABELS


def test_read_codes_validates_lines(tmp_path):
    f = tmp_path / "annomi__1.txt"
    f.write_text("0 -\n1 bond,task\n")
    assert read_codes(f) == {0: (), 1: ("task", "bond")}
    f.write_text("0 -\n1 empathy\n")
    with pytest.raises(ValueError, match=r"annomi__1.txt:2: unknown label"):
        read_codes(f)
    f.write_text("0 -\n0 task\n")
    with pytest.raises(ValueError, match="coded twice"):
        read_codes(f)


def test_kappa_known_values():
    assert cohen_kappa([1, 1, 0, 0], [1, 1, 0, 0]) == 1.0
    # po = .5, pe = .5 -> 0
    assert cohen_kappa([1, 0, 1, 0], [1, 1, 0, 0]) == 0.0
    res = agreement([(("bond",), ("bond",)), ((), ("bond",)), (("task",), ("task",)), ((), ())])
    assert res["labels"]["bond"]["positive_agreement"] == pytest.approx(2 / 3, abs=1e-3)
    assert res["overall"]["exact_label_set_agreement"] == 0.75


def test_release_is_standoff_and_valid():
    path = ROOT / RELEASE_NAME
    if not path.is_file():
        pytest.skip("no annotation release")
    manifest = json.loads((ROOT / "manifest.json").read_text())
    seen = set()
    n = 0
    with open(path) as fh:
        for line in fh:
            r = json.loads(line)
            assert set(r) == {"corpus", "session", "utterance", "speaker", "labels", "coder"}  # no text
            assert set(r["labels"]) <= set(LABELS) and r["speaker"] in ("therapist", "client")
            key = (r["corpus"], r["session"], r["utterance"])
            assert key not in seen
            seen.add(key)
            n += 1
    assert n == manifest["utterances"] >= 5000
    assert manifest["reliability"]["n_utterances"] >= 800
