"""Evaluate the DIARIZE stage on the development corpora with labels hidden, grouped 5-fold
cross-validation (GroupKFold by AnnoMI video / ESConv conversation: no session is both trained on and
measured; both models are retrained per fold with the same code as training/train_roles.py).

Measures
* role accuracy: gold speaker segmentation, speaker ids anonymised (S1/S2), roles hidden; a session
  counts as correct when both speakers get the right role. Per corpus and overall, with counts.
* unlabelled text (two layouts: one record per corpus utterance "turns", one record per sentence
  "sentences"): speaker-change precision/recall/F1 over sentence boundaries (pooled), speaker accuracy
  (SPEAKER_A/B vs gold, best of the two label permutations per session, weighted by sentence units),
  and end-to-end role accuracy per unit (speaker split + role attribution, no permutation).

    python -m evaluation.eval_diarize [--corpus-dir DIR] [--folds 5]
Writes evaluation/results/diarize.json and diarize.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from alliance_nlp.diarize import Diarizer  # noqa: E402
from alliance_nlp.files import write_json_atomic  # noqa: E402
from alliance_nlp.pipeline import Pipeline  # noqa: E402
from training.corpora import CORPUS_ENV, resolve_corpus_dir  # noqa: E402
from training.roles import (  # noqa: E402
    cs_group,
    cs_key,
    fit_role_model,
    fit_turn_model,
    fit_unit_role_model,
    labelled_session,
    load_dev_sessions,
    role_examples,
    turn_examples,
    unit_data,
    unlabelled_session,
)

LAYOUTS = ("turns", "sentences", "chunks")
BAR = 0.97


def eval_roles(d: Diarizer, cs) -> dict:
    s, gold = labelled_session(cs)
    s = Pipeline([("diarize", d)])(s)  # the component as analyze runs it (fold models inside)
    pred = {sid: sp.role for sid, sp in s.speakers.items()}
    conf = min(sp.role_confidence for sp in s.speakers.values())
    return {"correct": all(pred.get(sid) == r for sid, r in gold.items()), "confidence": conf}


def eval_unlabelled(d: Diarizer, cs, layout: str) -> dict:
    s, gold = unlabelled_session(cs, layout)
    texts, recs, roles = unit_data(s, gold)
    lab, _ = d.decode(texts, recs)
    true_ch = [roles[k] != roles[k + 1] for k in range(len(roles) - 1)]
    pred_ch = [lab[k] != lab[k + 1] for k in range(len(lab) - 1)]
    tp = sum(a and b for a, b in zip(true_ch, pred_ch))
    fp = sum(b and not a for a, b in zip(true_ch, pred_ch))
    fn = sum(a and not b for a, b in zip(true_ch, pred_ch))
    gold_bin = [int(r == roles[0]) for r in roles]  # 1 = same speaker as the first unit
    same = sum(int(l == 0) == g for l, g in zip(lab, gold_bin))
    best = max(same, len(lab) - same)
    # end to end: the unlabelled session through the pipeline's diarize component, each sentence unit
    # scored by the role of the output utterance that holds it
    out = Pipeline([("diarize", d)])(s)
    unit_roles, k = [], 0
    for utt in out.utterances:
        pos = 0
        while k < len(texts):
            at = utt.text.find(texts[k], pos)
            if at < 0:
                break
            unit_roles.append(out.role_of(utt.speaker))
            pos, k = at + len(texts[k]), k + 1
    role_ok = sum(a == r for a, r in zip(unit_roles, roles))
    return {"tp": tp, "fp": fp, "fn": fn, "units": len(lab), "speaker_correct": best, "role_correct": role_ok}


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate diarization (roles, speaker changes) on the dev corpora")
    ap.add_argument("--corpus-dir", default=os.environ.get(CORPUS_ENV))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--decoder", choices=("viterbi", "alternation"), default="viterbi")
    ap.add_argument("--emission-weight", type=float, default=1.0)
    ap.add_argument("--out", default=str(ROOT / "evaluation" / "results"))
    ap.add_argument("--limit", type=int, help="smoke test: an evenly spaced sample of N sessions")
    args = ap.parse_args(argv)
    from sklearn.model_selection import GroupKFold

    t0 = time.time()
    sessions = load_dev_sessions(resolve_corpus_dir(args.corpus_dir))
    if args.limit:
        sessions = sessions[:: max(1, len(sessions) // args.limit)][: args.limit]
    role_ex = {cs_key(cs): role_examples(cs) for cs in sessions}
    turn_ex = {cs_key(cs): turn_examples(cs) for cs in sessions}
    print(f"features for {len(sessions)} sessions ({time.time() - t0:.0f}s)", flush=True)
    groups = [cs_group(cs) for cs in sessions]
    roles_by = defaultdict(list)
    unl = {lay: defaultdict(lambda: defaultdict(int)) for lay in LAYOUTS}
    misses = []
    for fold, (tr, te) in enumerate(GroupKFold(n_splits=args.folds).split(sessions, groups=groups)):
        train = [sessions[i] for i in tr]
        d = Diarizer(
            role_model=fit_role_model(train, role_ex),
            turn_model=fit_turn_model(train, turn_ex),
            unit_model=fit_unit_role_model(train, turn_ex) if args.decoder == "viterbi" else False,
            emission_weight=args.emission_weight,
        )
        for i in te:
            cs = sessions[i]
            r = eval_roles(d, cs)
            roles_by[cs.corpus].append(r)
            if not r["correct"]:
                misses.append(cs_key(cs))
            for lay in LAYOUTS:
                m = eval_unlabelled(d, cs, lay)
                for k, v in m.items():
                    unl[lay][cs.corpus][k] += v
                unl[lay][cs.corpus]["sessions"] += 1
        print(f"fold {fold + 1}/{args.folds} done ({time.time() - t0:.0f}s)", flush=True)

    res = {
        "evaluated": _dt.date.today().isoformat(),
        "decoder": args.decoder,
        "emission_weight": args.emission_weight,
        "protocol": f"GroupKFold({args.folds}) by AnnoMI video_url / "
        "ESConv conversation; both models retrained per fold; labels hidden",
        "bar_role_accuracy": BAR,
        "roles": {},
        "unlabelled": {},
        "role_misses": sorted(misses),
    }
    allr = []
    for corpus in ("annomi", "esconv"):
        rs = roles_by[corpus]
        allr += rs
        res["roles"][corpus] = _role_summary(rs)
    res["roles"]["all"] = _role_summary(allr)
    for lay in LAYOUTS:
        res["unlabelled"][lay] = {}
        tot = defaultdict(int)
        for corpus in ("annomi", "esconv"):
            m = unl[lay][corpus]
            for k, v in m.items():
                tot[k] += v
            res["unlabelled"][lay][corpus] = _unl_summary(m)
        res["unlabelled"][lay]["all"] = _unl_summary(tot)
    res["seconds"] = round(time.time() - t0)
    out = Path(args.out)
    write_json_atomic(out / "diarize.json", res)
    (out / "diarize.md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


def _role_summary(rs):
    n = len(rs)
    c = sum(r["correct"] for r in rs)
    conf_ok = [r["confidence"] for r in rs if r["correct"]]
    conf_bad = [r["confidence"] for r in rs if not r["correct"]]
    return {
        "sessions": n,
        "correct": c,
        "accuracy": round(c / n, 4) if n else None,
        "mean_confidence_correct": round(float(np.mean(conf_ok)), 4) if conf_ok else None,
        "mean_confidence_wrong": round(float(np.mean(conf_bad)), 4) if conf_bad else None,
    }


def _unl_summary(m):
    p, r, f = prf(m["tp"], m["fp"], m["fn"])
    u = m["units"] or 1
    return {
        "sessions": m["sessions"],
        "units": m["units"],
        "change_precision": round(p, 4),
        "change_recall": round(r, 4),
        "change_f1": round(f, 4),
        "speaker_accuracy": round(m["speaker_correct"] / u, 4),
        "role_accuracy_per_unit": round(m["role_correct"] / u, 4),
    }


def markdown(res) -> str:
    L = [
        "# Diarization evaluation (development corpora)",
        "",
        f"Protocol: {res['protocol']}. Evaluated {res['evaluated']}. Unlabelled decoder: {res['decoder']}"
        f" (emission weight {res['emission_weight']}).",
        "",
        "## Role attribution (gold speaker turns, roles hidden; session correct = both roles right)",
        "",
        "| corpus | sessions | correct | accuracy | mean conf. (right) | mean conf. (wrong) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, v in res["roles"].items():
        L.append(
            f"| {k} | {v['sessions']} | {v['correct']} | {v['accuracy']:.3f} | "
            f"{v['mean_confidence_correct'] or float('nan'):.3f} | {v['mean_confidence_wrong'] or float('nan'):.3f} |"
        )
    acc = res["roles"]["all"]["accuracy"]
    L += [
        "",
        f"Bar: >= {res['bar_role_accuracy']:.0%} of development sessions -> "
        f"{'MET' if acc >= res['bar_role_accuracy'] else 'NOT MET'} ({acc:.1%}).",
        "",
        "## Unlabelled text (speaker changes between sentences; two-party alternation)",
        "",
        "Layouts: `turns` = one line per corpus utterance; `sentences` = one line per sentence; "
        "`chunks` = lines of 2-12 sentences cut regardless of speaker (pasted blocks, ASR segments).",
        "",
        "| layout | corpus | sessions | sentence units | change P | change R | change F1 | speaker acc. | role acc./unit |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lay, by in res["unlabelled"].items():
        for k, v in by.items():
            L.append(
                f"| {lay} | {k} | {v['sessions']} | {v['units']} | {v['change_precision']:.3f} | "
                f"{v['change_recall']:.3f} | {v['change_f1']:.3f} | {v['speaker_accuracy']:.3f} | "
                f"{v['role_accuracy_per_unit']:.3f} |"
            )
    L += [
        "",
        "Speaker accuracy: best of the two SPEAKER_A/B permutations per session, weighted by sentence "
        "units. Role accuracy per unit: end to end (split + roles), no permutation.",
        "",
        "Notes: the speaker split assumes two parties. The Viterbi emission weight (1.0) was compared "
        "with 0.6 and 1.6 on this same cross-validation (differences <= 0.01), so it is lightly tuned "
        "on these figures. In `chunks` a unit's gold speaker is that of the gold sentence it starts in. "
        "Confidence on the wrongly attributed sessions is still high (mean above), so treat role "
        "confidence as a ranking, not an error rate. These are development-corpus figures (AnnoMI "
        "demonstration videos, ESConv peer-support chats); real clinical transcripts may differ.",
        "",
    ]
    return "\n".join(L)


if __name__ == "__main__":
    raise SystemExit(main())
