"""Coder files, agreement statistics, and the released standoff annotations."""

import json

import pytest

from alliance_nlp.labels import LABELS
from training.annotations import RELEASE_NAME, ROOT, agreement, cohen_kappa, read_codes


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


@pytest.mark.skipif(
    __import__("training.corpora", fromlist=["x"]).default_corpus_dir() is None,
    reason="development corpora not present",
)
def test_build_pools_reliability_rounds_and_prefers_primary_coder(tmp_path):
    from training.annotations import build, disagreements, session_filename
    from training.corpora import read_esconv

    sessions = sorted(read_esconv().values(), key=lambda s: len(s.utterances))[:3]
    keys = [(s.corpus, s.session) for s in sessions]
    n = {k: len(s.utterances) for k, s in zip(keys, sessions)}

    def write(coder, key, marked):
        d = tmp_path / "raw" / coder
        d.mkdir(parents=True, exist_ok=True)
        (d / session_filename(*key)).write_text("".join(f"{i} {marked.get(i, '-')}\n" for i in range(n[key])))

    # round 1: A vs E on session 0; round 2: each session's primary (P) vs O on sessions 1 and 2
    write("A", keys[0], {0: "bond"})
    write("E", keys[0], {0: "bond"})
    write("P", keys[1], {0: "task", 1: "bond"})
    write("O", keys[1], {0: "task"})  # O misses one bond
    write("P", keys[2], {2: "repair"})
    write("O", keys[2], {2: "repair"})
    (tmp_path / "assignments.json").write_text(
        json.dumps(
            {
                "coders": {"A": [], "P": [], "E": [], "O": []},
                "reliability": [
                    {"name": "r1", "coders": ["A", "E"], "sessions": [" ".join(keys[0])]},
                    {"name": "r2", "coders": ["primary", "O"], "sessions": [" ".join(k) for k in keys[1:]]},
                ],
            }
        )
    )
    res = build(tmp_path)
    r1, r2 = res["reliability"]["rounds"]
    assert (r1["sessions"], r2["sessions"]) == (1, 2)
    assert r1["labels"]["bond"]["kappa"] == 1.0 and r2["labels"]["bond"]["positives_coder1"] == 1
    assert r2["labels"]["bond"]["positives_coder2"] == 0
    assert res["reliability"]["n_utterances"] == sum(n.values())
    # the release takes the primary coder, never the reliability coder, where nothing is adjudicated
    assert res["utterances"] == sum(n.values())
    coders = {(r["session"], r["coder"]) for r in map(json.loads, open(tmp_path / RELEASE_NAME))}
    assert coders == {(keys[0][1], "A"), (keys[1][1], "P"), (keys[2][1], "P")}
    lines = disagreements(tmp_path)
    assert len(lines) == 1 and "[1] P=bond O=-" in lines[0]
