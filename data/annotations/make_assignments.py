"""Choose the sessions we code and deal them to coders (seeded, reproducible).

AnnoMI: every low-quality development transcript (rich in ruptures) plus a random sample of
high-quality ones. ESConv: low-rated conversations (seeker empathy or relevance <= 2, where ruptures
concentrate) plus a random sample of the rest. A stratified reliability subset is coded by coder A
and, independently, by coder E. Run: python data/annotations/make_assignments.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from training.corpora import read_annomi, read_esconv

SEED = 20261124
N_ANNOMI_HIGH = 32
N_ESCONV_LOW = 45
N_ESCONV_OTHER = 50
PRIMARY = ["A", "B", "C", "D"]
RELIABILITY_CODER = "E"
SUPPLEMENT_CODER = "F"
N_SUPPLEMENT_ANNOMI = 12
N_SUPPLEMENT_ESCONV = 25
SUPPLEMENT2_CODER = "G"
N_SUPPLEMENT2_ANNOMI = 4
N_SUPPLEMENT2_ESCONV = 28
SUPPLEMENT3_CODER = "H"
N_SUPPLEMENT3_ANNOMI = 3
N_SUPPLEMENT3_ESCONV = 20
# Release v1.1: sessions ranked by the v1 classifier's expected withdrawal and repair counts.
SUPPLEMENT4_CODERS = ["I", "J", "K", "L", "M", "N"]
N_SUPPLEMENT4_UTTERANCES = 6000
# A second reliability round on the v1.1 supplement: coder O independently re-codes a sample of each
# supplement coder's sessions (at least 70 utterances per coder).
RELIABILITY2_CODER = "O"
N_RELIABILITY2_PER_CODER = 70


def _low_rated(meta: dict) -> bool:
    seeker = meta.get("seeker") or {}
    try:
        return min(int(seeker.get("empathy", 5)), int(seeker.get("relevance", 5))) <= 2
    except ValueError:
        return False


def _min_rating(meta: dict) -> int:
    seeker = meta.get("seeker") or {}
    try:
        return min(int(seeker.get("empathy", 9)), int(seeker.get("relevance", 9)))
    except ValueError:
        return 9


def _rating_sum(meta: dict) -> int:
    seeker = meta.get("seeker") or {}
    try:
        return int(seeker.get("empathy", 9)) + int(seeker.get("relevance", 9))
    except ValueError:
        return 18


def _seeker_words(session) -> float:
    words = [len(u.text.split()) for u in session.utterances if u.speaker == "client"]
    return sum(words) / max(len(words), 1)


def _sustain_share(session) -> float:
    import csv

    from training.corpora import resolve_corpus_dir

    global _SUSTAIN
    if "_SUSTAIN" not in globals():
        counts: dict = {}
        with open(resolve_corpus_dir() / "annomi" / "AnnoMI-simple.csv", newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                c = counts.setdefault(r["transcript_id"], [0, 0])
                if r["interlocutor"] == "client":
                    c[0] += 1
                    c[1] += r["client_talk_type"] == "sustain"
        _SUSTAIN = {k: v[1] / max(v[0], 1) for k, v in counts.items()}
    return _SUSTAIN[session.session]


# The classifier that ranked supplement 4: alliance-markers-v1 as trained on release v1.0, shipped at
# commit 45f41dd (the shipped model has since been retrained on v1.1). To redraw, export it with
#   mkdir -p /tmp/m && git archive 45f41dd models/alliance-markers-v1 | tar -x -C /tmp/m
# and run this script with --ranking-model /tmp/m/models/alliance-markers-v1.
RANKING_MODEL_COMMIT = "45f41dd"


def _deal(sessions: list, coders: list[str], first: dict | None = None) -> tuple[dict, dict]:
    """Deal sessions in order to the coder with the fewest utterances so far (after `first`, sessions
    given to named coders up front). Returns ({coder: sessions}, {coder: utterances})."""
    deal = {c: list((first or {}).get(c, [])) for c in coders}
    load = {c: sum(len(s.utterances) for s in deal[c]) for c in coders}
    for s in sessions:
        c = min(coders, key=lambda k: load[k])
        deal[c].append(s)
        load[c] += len(s.utterances)
    return deal, load


def _require_ranking_model() -> str:
    raise SystemExit(
        f"supplement 4 needs the v1.0 classifier: see RANKING_MODEL_COMMIT ({RANKING_MODEL_COMMIT}) "
        "in this script and pass --ranking-model"
    )


def _model_ranked(sessions: list, model: str) -> list:
    """Sessions by the v1.0 classifier's expected (withdrawal + 0.3 x repair) positives per utterance."""
    from alliance_nlp.classify import MarkerClassifier
    from alliance_nlp.labels import LABELS
    from training.corpora import to_session

    as_sessions = [to_session(s) for s in sessions]
    probs = MarkerClassifier.load(model).predict_proba(as_sessions)
    iw, ir = LABELS.index("rupture_withdrawal"), LABELS.index("repair")
    density = {
        (s.corpus, s.session): float(p[:, iw].sum() + 0.3 * p[:, ir].sum()) / len(s.utterances)
        for s, p in zip(sessions, probs)
    }
    return sorted(sessions, key=lambda s: (-round(density[(s.corpus, s.session)], 6), s.corpus, s.session))


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--ranking-model",
        help=f"the v1.0 classifier (commit {RANKING_MODEL_COMMIT}) to redraw "
        "supplement 4; without it the supplement already in assignments.json is kept",
    )
    args = ap.parse_args(argv)
    path = Path(__file__).with_name("assignments.json")
    previous = json.loads(path.read_text()) if path.is_file() else {}
    rng = random.Random(SEED)
    annomi, esconv = read_annomi(), read_esconv()
    low = sorted((s for s in annomi.values() if s.meta["mi_quality"] == "low"), key=lambda s: int(s.session))
    high = sorted((s for s in annomi.values() if s.meta["mi_quality"] == "high"), key=lambda s: int(s.session))
    high = rng.sample(high, N_ANNOMI_HIGH)
    es_low = [s for s in esconv.values() if _low_rated(s.meta)]
    es_rest = [s for s in esconv.values() if not _low_rated(s.meta)]
    es_low = rng.sample(es_low, min(N_ESCONV_LOW, len(es_low)))
    es_rest = rng.sample(es_rest, N_ESCONV_OTHER)

    # reliability subset: stratified across both corpora and quality levels
    rel = low[::3] + high[:4] + es_low[:7] + es_rest[:7]
    rel_keys = {(s.corpus, s.session) for s in rel}
    pool = [s for s in low + high + es_low + es_rest if (s.corpus, s.session) not in rel_keys]
    rng.shuffle(pool)
    pool.sort(key=lambda s: -len(s.utterances))
    deal, load = _deal(pool, PRIMARY, first={"A": rel})
    out = {
        "seed": SEED,
        "coders": {c: [f"{s.corpus} {s.session}" for s in deal[c]] for c in PRIMARY},
        "reliability": {"coders": ["A", RELIABILITY_CODER], "sessions": [f"{s.corpus} {s.session}" for s in rel]},
        "utterances": {**load, RELIABILITY_CODER: sum(len(s.utterances) for s in rel)},
    }
    out["coders"][RELIABILITY_CODER] = out["reliability"]["sessions"]  # round 1 (v1.0)
    # Supplement (added after the first pass found ruptures scarce): seek ruptures where they occur.
    # AnnoMI transcripts not yet dealt with the highest share of client sustain talk (AnnoMI's own
    # annotation, which coders never see), and ESConv conversations rated 3 (the lowest remaining)
    # on empathy or relevance, lowest rated first.
    taken = {(s.corpus, s.session) for c in PRIMARY for s in deal[c]}
    sustain = {sid: _sustain_share(s) for sid, s in annomi.items() if ("annomi", sid) not in taken}
    sup_annomi = sorted(sustain, key=lambda k: (-sustain[k], int(k)))[:N_SUPPLEMENT_ANNOMI]
    rest = [s for s in esconv.values() if ("esconv", s.session) not in taken and _min_rating(s.meta) == 3]
    rest.sort(key=lambda s: (_rating_sum(s.meta), s.session))
    sup = [annomi[k] for k in sup_annomi] + rest[:N_SUPPLEMENT_ESCONV]
    out["coders"][SUPPLEMENT_CODER] = [f"{s.corpus} {s.session}" for s in sup]
    out["utterances"][SUPPLEMENT_CODER] = sum(len(s.utterances) for s in sup)
    # Second supplement, for withdrawal (minimal, evasive answers): the next AnnoMI transcripts by
    # sustain share, and ESConv conversations whose seeker writes the shortest messages.
    taken |= {(s.corpus, s.session) for s in sup}
    sup_annomi2 = [k for k in sorted(sustain, key=lambda k: (-sustain[k], int(k))) if ("annomi", k) not in taken][
        :N_SUPPLEMENT2_ANNOMI
    ]
    rest2 = [s for s in esconv.values() if ("esconv", s.session) not in taken and len(s.utterances) >= 12]
    rest2.sort(key=lambda s: (_seeker_words(s), s.session))
    sup2 = [annomi[k] for k in sup_annomi2] + rest2[:N_SUPPLEMENT2_ESCONV]
    out["coders"][SUPPLEMENT2_CODER] = [f"{s.corpus} {s.session}" for s in sup2]
    out["utterances"][SUPPLEMENT2_CODER] = sum(len(s.utterances) for s in sup2)
    # Third supplement, same criteria, next in line (withdrawal and repair were still under 150).
    taken |= {(s.corpus, s.session) for s in sup2}
    sup_annomi3 = [k for k in sorted(sustain, key=lambda k: (-sustain[k], int(k))) if ("annomi", k) not in taken][
        :N_SUPPLEMENT3_ANNOMI
    ]
    rest3 = [s for s in rest2 if ("esconv", s.session) not in taken][:N_SUPPLEMENT3_ESCONV]
    sup3 = [annomi[k] for k in sup_annomi3] + rest3
    out["coders"][SUPPLEMENT3_CODER] = [f"{s.corpus} {s.session}" for s in sup3]
    out["utterances"][SUPPLEMENT3_CODER] = sum(len(s.utterances) for s in sup3)
    # Fourth supplement (release v1.1; withdrawal and repair still under 150): the classifier trained on
    # release v1.0 (models/alliance-markers-v1) scores every uncoded session, and sessions are taken in
    # order of expected withdrawal (+0.3 x repair) positives per utterance. The model only chooses
    # which sessions are read; coders never see its output (codebook 5.5).
    taken |= {(s.corpus, s.session) for s in sup3}
    if args.ranking_model or not all(c in previous.get("coders", {}) for c in SUPPLEMENT4_CODERS):
        ranked = _model_ranked(
            [
                s
                for s in list(annomi.values()) + list(esconv.values())
                if (s.corpus, s.session) not in taken and len(s.utterances) >= 12
            ],
            args.ranking_model or _require_ranking_model(),
        )
        sup4, n4 = [], 0
        for s in ranked:
            if n4 >= N_SUPPLEMENT4_UTTERANCES:
                break
            sup4.append(s)
            n4 += len(s.utterances)
        deal4, load4 = _deal(sorted(sup4, key=lambda s: -len(s.utterances)), SUPPLEMENT4_CODERS)
    else:  # keep the drawn supplement: its ranking model is no longer the shipped one
        by_key = {("annomi", k): v for k, v in annomi.items()} | {("esconv", k): v for k, v in esconv.items()}
        deal4 = {c: [by_key[tuple(x.split(" ", 1))] for x in previous["coders"][c]] for c in SUPPLEMENT4_CODERS}
        load4 = {c: sum(len(s.utterances) for s in deal4[c]) for c in SUPPLEMENT4_CODERS}
    for c in SUPPLEMENT4_CODERS:
        out["coders"][c] = [f"{s.corpus} {s.session}" for s in deal4[c]]
        out["utterances"][c] = load4[c]
    rel2 = []
    for c in SUPPLEMENT4_CODERS:
        mine, n = sorted(deal4[c], key=lambda s: (s.corpus, s.session)), 0
        rng.shuffle(mine)
        for s in mine:
            if n >= N_RELIABILITY2_PER_CODER:
                break
            if len(s.utterances) <= 2 * N_RELIABILITY2_PER_CODER:
                rel2.append(s)
                n += len(s.utterances)
    out["reliability"] = [
        {"name": "v1.0", **out["reliability"]},
        {
            "name": "v1.1 supplement",
            "coders": ["primary", RELIABILITY2_CODER],
            "sessions": [f"{s.corpus} {s.session}" for s in rel2],
        },
    ]
    out["coders"][RELIABILITY2_CODER] = out["reliability"][1]["sessions"]
    out["utterances"][RELIABILITY2_CODER] = sum(len(s.utterances) for s in rel2)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["utterances"]))


if __name__ == "__main__":
    main()
