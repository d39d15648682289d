"""Release v2.0 (codebook v2.0): which sessions are coded, by whom, and the fixed test set.

Everything in v2.0 is coded afresh under codebook v2.0 (its audit changed goal, withdrawal, confrontation,
repair and parts of bond and task, so no v1.x code is carried over), whole sessions at a time.

- **Test set (fixed for this and every later release).** Only sessions the v1 classifier never trained
  on: its v1.1 test split and sessions v1.1 did not code, and no AnnoMI video with a session in v1.1's
  train/validation. ESConv: *valid* conversations only, so that ESConv valid stays outside every
  training release (the session-level check of "Session estimates v2" runs on it); AnnoMI: low-quality
  transcripts first (where ruptures are), then high-quality. Within each corpus sessions are taken in
  order of the v1 classifier's expected rare-marker positives per utterance (withdrawal + repair +
  0.5 x confrontation): the model chooses which sessions are read, never what is coded. Each test
  session is coded independently by two coders (pairs TA/TB, TC/TD, ...) and adjudicated.
- **Coverage (train/validation).** Every other AnnoMI development transcript, then ESConv *train*
  conversations (those v1.1 coded first: they were chosen for ruptures; then by the same ranking) until
  the release holds TARGET utterances; then, as an extension, the rest of ESConv train in the same order,
  and the 46 ESConv valid conversations v1.1 trained on (so every v1.x session is re-coded).

Run: python data/annotations/make_assignments_v2.py   (writes assignments_v2.json; seeded, reproducible
given the shipped v1 classifier, alliance-markers-v1 trained on release v1.1)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "assignments_v2.json"
TARGET = 32_500
TEST_ESCONV = 2_700
TEST_ANNOMI = 2_000
# added when the first 4,745 test utterances held only about 30 withdrawal and 65 repair positives
TEST_EXTRA = 2_400
BATCH = 1_100


def _scores(sessions: list, model: str | None) -> dict[str, dict[str, float]]:
    """Per session, the v1 classifier's expected positives per utterance of each rare label."""
    from alliance_nlp.classify import MarkerClassifier
    from alliance_nlp.labels import LABELS
    from training.corpora import to_session

    clf = MarkerClassifier.load(model) if model else MarkerClassifier.load()
    probs = clf.predict_proba([to_session(s) for s in sessions])
    return {
        f"{s.corpus} {s.session}": {
            lab: float(p[:, LABELS.index(lab)].sum()) / max(1, len(s.utterances))
            for lab in ("rupture_withdrawal", "repair", "rupture_confrontation")
        }
        for s, p in zip(sessions, probs)
    }


def _ranked(sessions: list, scores: dict[str, dict[str, float]], weights: dict[str, float]) -> list:
    """Sessions by a weighted sum of expected positives per utterance, highest first."""

    def score(s) -> float:
        sc = scores[f"{s.corpus} {s.session}"]
        return round(sum(w * sc[lab] for lab, w in weights.items()), 6)

    return sorted(sessions, key=lambda s: (-score(s), s.corpus, s.session))


RUPTURES = {"rupture_withdrawal": 1.0, "repair": 1.0, "rupture_confrontation": 0.5}
SCARCE = {"rupture_withdrawal": 1.0, "repair": 0.5}  # the test extension: the two scarcest labels


def _take(sessions: list, budget: int) -> list:
    out, n = [], 0
    for s in sessions:
        if n >= budget:
            break
        out.append(s)
        n += len(s.utterances)
    return out


def _batches(sessions: list, size: int) -> list[list]:
    """Consecutive batches of about `size` utterances (whole sessions); a short tail joins the last."""
    out: list[list] = [[]]
    n = 0
    for s in sessions:
        if n >= size:
            out.append([])
            n = 0
        out[-1].append(s)
        n += len(s.utterances)
    if len(out) > 1 and sum(len(s.utterances) for s in out[-1]) < size // 2:
        out[-2].extend(out.pop())
    return [b for b in out if b]


def main(argv: list[str] | None = None) -> int:
    from training.annotations import ROOT as ANN
    from training.corpora import read_corpus
    from training.dataset import build_rows, load_annotations

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="ranking classifier (default: the shipped alliance-markers-v1)")
    args = ap.parse_args(argv)

    v11 = build_rows(load_annotations(ANN / "alliance_markers.v1.1.jsonl"))
    split = {(r["corpus"], r["session"]): r["split"] for r in v11}
    seen_groups = {(r["corpus"], r["group"]) for r in v11 if r["split"] != "test"}
    annomi, esconv = read_corpus("annomi"), read_corpus("esconv")
    key = lambda s: f"{s.corpus} {s.session}"  # noqa: E731

    def eligible(s) -> bool:
        return split.get((s.corpus, s.session)) in (None, "test") and (s.corpus, s.group) not in seen_groups

    es_valid = [s for s in esconv.values() if s.session.startswith("valid:") and eligible(s)]
    an_low = [s for s in annomi.values() if eligible(s) and s.meta.get("mi_quality") == "low"]
    an_high = [s for s in annomi.values() if eligible(s) and s.meta.get("mi_quality") != "low"]
    es_train = [s for s in esconv.values() if s.session.startswith("train:")]
    uncoded_train = [s for s in es_train if (s.corpus, s.session) not in split]
    scores = _scores(es_valid + an_low + an_high + uncoded_train, args.model)
    ranked = _ranked(es_valid + an_low + an_high, scores, RUPTURES)
    test = _take([s for s in ranked if s.corpus == "esconv"], TEST_ESCONV)
    test += _take([s for s in ranked if s in an_low] + [s for s in ranked if s in an_high], TEST_ANNOMI)
    test_keys = {key(s) for s in test}
    # the test set takes whole AnnoMI videos: a video's other transcripts join it
    test_groups = {(s.corpus, s.group) for s in test}
    test += [s for s in annomi.values() if (s.corpus, s.group) in test_groups and key(s) not in test_keys]
    test_keys = {key(s) for s in test}
    # extension: ESConv conversations no classifier trained on, richest in withdrawal and repair
    extra_pool = [s for s in es_valid + uncoded_train if key(s) not in test_keys]
    extra = _take(_ranked(extra_pool, scores, SCARCE), TEST_EXTRA)
    test_keys |= {key(s) for s in extra}

    n_test = sum(len(s.utterances) for s in test + extra)
    cover = [s for s in annomi.values() if key(s) not in test_keys]
    coded_before = [s for s in es_train if (s.corpus, s.session) in split and key(s) not in test_keys]
    rest = [s for s in _ranked(uncoded_train, scores, RUPTURES) if key(s) not in test_keys]
    budget = TARGET - n_test - sum(len(s.utterances) for s in cover)
    cover += _take(sorted(coded_before, key=key) + rest, budget)
    # coverage extension: the rest of ESConv train (withdrawal and repair were still under 500 at TARGET)
    taken = {key(s) for s in cover}
    cover_more = [s for s in sorted(coded_before, key=key) + rest if key(s) not in taken]
    # and the ESConv valid conversations v1.1 trained on, so that every session of v1.x is re-coded
    # under codebook v2.0 (they are outside the session-level check anyway: a training release holds them)
    valid_v11 = sorted(
        (
            s
            for s in esconv.values()
            if s.session.startswith("valid:") and split.get((s.corpus, s.session)) in ("train", "validation")
        ),
        key=key,
    )

    batches = []
    for i, b in enumerate(_batches(test, BATCH) + _batches(extra, BATCH)):
        pair = (f"T{2 * i + 1:02d}", f"T{2 * i + 2:02d}")
        batches.append(
            {"name": f"test-{i + 1}", "split": "test", "coders": list(pair), "sessions": [key(s) for s in b]}
        )
    for i, b in enumerate(_batches(cover, BATCH) + _batches(cover_more, BATCH) + _batches(valid_v11, BATCH)):
        batches.append(
            {
                "name": f"cover-{i + 1}",
                "split": "trainval",
                "coders": [f"P{i + 1:02d}"],
                "sessions": [key(s) for s in b],
            }
        )
    sizes = {f"{s.corpus} {s.session}": len(s.utterances) for s in [*annomi.values(), *esconv.values()]}
    for b in batches:
        b["utterances"] = sum(sizes[k] for k in b["sessions"])
    doc = {
        "release": "2.0",
        "codebook": "2.0",
        "test_sessions": sorted(test_keys),
        "test_utterances": sum(sizes[k] for k in test_keys),
        "coverage_utterances": sum(len(s.utterances) for s in cover),
        "batches": batches,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    # the same, in the form `python -m training.annotations build --root data/annotations/v2` reads:
    # primary coders first, then each test pair's first coder, then the second coders
    coders = {c: b["sessions"] for b in batches for c in b["coders"]}
    rounds = [
        {"name": b["name"], "coders": b["coders"], "sessions": b["sessions"]} for b in batches if b["split"] == "test"
    ]
    order = (
        [c for c in coders if c.startswith("P")] + [r["coders"][0] for r in rounds] + [r["coders"][1] for r in rounds]
    )
    build_doc = {
        "release": "2.0",
        "codebook": "2.0",
        "coders": {c: coders[c] for c in order},
        "reliability": rounds,
        "test_sessions": doc["test_sessions"],
    }
    (ROOT / "v2").mkdir(exist_ok=True)
    (ROOT / "v2" / "assignments.json").write_text(json.dumps(build_doc, indent=1) + "\n", encoding="utf-8")
    print(
        f"test: {len(test_keys)} sessions, {doc['test_utterances']} utterances in "
        f"{sum(b['split'] == 'test' for b in batches)} batches; coverage: {len(cover)} sessions, "
        f"{doc['coverage_utterances']} utterances in {sum(b['split'] != 'test' for b in batches)} batches -> {OUT}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
