"""The loader joins standoff labels to corpus text, builds context, and keeps groups in one split."""

import json

import pytest

from alliance_nlp.labels import LABELS
from training.corpora import CorpusNotFoundError, default_corpus_dir, read_annomi, read_esconv, resolve_corpus_dir
from training.dataset import assign_splits, build_dataset

corpora = pytest.mark.skipif(default_corpus_dir() is None, reason="development corpora not present")


def test_assign_splits_keeps_groups_whole_and_is_seeded():
    groups = {f"g{i}": 10 + i for i in range(40)}
    a = assign_splits(groups, seed=1)
    assert set(a) == set(groups)
    assert a == assign_splits(groups, seed=1)
    share = {s: sum(groups[g] for g in a if a[g] == s) / sum(groups.values()) for s in set(a.values())}
    assert 0.6 < share["train"] < 0.8 and share["validation"] > 0.1 and share["test"] > 0.1


def test_missing_corpus_dir_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusNotFoundError, match="ALLIANCE_NLP_CORPORA"):
        resolve_corpus_dir(tmp_path / "nope")


@corpora
def test_join_context_and_grouped_splits(tmp_path):
    annomi, esconv = read_annomi(), read_esconv()
    # test labels keyed by ids: a few whole sessions from each corpus, one shares a video with another
    by_video = {}
    for s in annomi.values():
        by_video.setdefault(s.group, []).append(s)
    shared = next(v for v in by_video.values() if len(v) > 1)
    sessions = shared[:2] + list(annomi.values())[:12] + list(esconv.values())[:20]
    ann = []
    for s in sessions:
        for u in s.utterances:
            ann.append(
                {
                    "corpus": s.corpus,
                    "session": s.session,
                    "utterance": u.utterance,
                    "speaker": u.speaker,
                    "labels": ["bond"] if u.utterance % 3 == 0 else [],
                    "coder": "T",
                }
            )
    path = tmp_path / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ann))
    dd = build_dataset(path, context_turns=3)
    assert set(dd) == {"train", "validation", "test"}
    rows = [r for split in dd.values() for r in split]
    assert len(rows) == len({(r["corpus"], r["session"], r["utterance"]) for r in ann})
    # join: text and role come from the corpus
    s0 = sessions[2]
    r = next(
        r
        for r in rows
        if r["corpus"] == s0.corpus and r["session"] == s0.session and r["utterance"] == s0.utterances[4].utterance
    )
    assert r["text"] == s0.utterances[4].text and r["role"] == s0.utterances[4].speaker
    assert r["context_texts"] == [u.text for u in s0.utterances[1:4]]
    assert r["labels"] == [int(l == "bond" and s0.utterances[4].utterance % 3 == 0) for l in LABELS]
    # no session and no video in two splits
    where = {}
    for split, ds in dd.items():
        for row in ds:
            for key in ((row["corpus"], row["session"]), (row["corpus"], row["group"])):
                assert where.setdefault(key, split) == split


@corpora
def test_auxiliary_targets_follow_the_corpora_and_roles():
    """AnnoMI behaviour on therapist turns, talk type on client turns, ESConv strategy on supporter
    turns; one class per utterance, and absent (-1) for the groups that do not apply."""
    from training.auxiliary import GROUPS, aux_targets, read_auxiliary

    table = read_auxiliary()
    annomi, esconv = read_annomi(), read_esconv()
    sid = sorted(annomi)[0]
    utts = annomi[sid].utterances
    y = aux_targets([("annomi", sid, u.utterance) for u in utts], table)
    names = list(GROUPS)
    for u, row in zip(utts, y):
        assert (row >= 0).sum() <= 1
        if row[names.index("annomi_behaviour")] >= 0:
            assert u.speaker == "therapist"
        if row[names.index("annomi_talk")] >= 0:
            assert u.speaker == "client"
    assert (y[:, names.index("esconv_strategy")] == -1).all() and (y >= 0).any()
    conv = esconv[sorted(esconv)[0]]
    z = aux_targets([("esconv", conv.session, u.utterance) for u in conv.utterances], table)
    st = z[:, names.index("esconv_strategy")]
    assert all((s >= 0) == (u.speaker == "therapist") for s, u in zip(st, conv.utterances))
