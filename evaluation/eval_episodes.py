"""Rupture-repair episodes against the coded test set of annotation release v2.0, through the product.

    python -m evaluation.eval_episodes [--corpus-dir DIR] [--model DIR]

Gold episodes: `alliance_nlp.episodes.rupture_episodes` on each test session with the adjudicated codes
as its markers (one utterance per coded record). Predicted episodes: the same function on the session
as the pipeline leaves it (diarize, segment, classify; evaluation/product.py), i.e. what `analyze`
reports. An episode matches when the coded records it spans overlap. Reported, with 95% intervals from
a bootstrap over sessions:

- rupture episodes: precision (predicted episodes that overlap a gold one) and recall (gold episodes
  overlapped by a predicted one);
- repaired ruptures: the same, counting only episodes marked repaired on both sides;
- resolution: the same for episodes marked resolved.

Writes evaluation/results/episodes.json and episodes.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from alliance_nlp.episodes import rupture_episodes
from alliance_nlp.session import Episode, Session
from alliance_nlp.stats import cluster_bootstrap_counts, percentile_interval
from evaluation.product import cached_sessions
from training.corpora import read_corpus, to_session

ROOT = Path(__file__).resolve().parents[1]
V2 = ROOT / "data" / "annotations" / "v2"
RESULTS = ROOT / "evaluation" / "results"
KINDS = ("rupture", "repaired", "resolved")


def gold_session(corpus_session, codes: dict[int, list[str]]) -> Session:
    """The corpus session with the adjudicated codes as its markers (one utterance per record)."""
    s = to_session(corpus_session)
    for i, u in enumerate(s.utterances):
        u.source = i
        u.markers = list(codes.get(i, []))
    return s


def _span(e: Episode) -> tuple[int, int] | None:
    return (min(e.sources), max(e.sources)) if e.sources else None


def _keep(e: Episode, kind: str) -> bool:
    return kind == "rupture" or (kind == "repaired" and e.repaired) or (kind == "resolved" and e.resolved is True)


def counts(gold: list[Episode], pred: list[Episode], kind: str) -> tuple[int, int, int, int]:
    """(predicted that match, predicted, gold that are matched, gold) for one session."""
    g = [s for e in gold if _keep(e, kind) and (s := _span(e))]
    p = [s for e in pred if _keep(e, kind) and (s := _span(e))]

    def hit(a: tuple[int, int], bs: list[tuple[int, int]]) -> bool:
        return any(a[0] <= b[1] and b[0] <= a[1] for b in bs)

    return sum(hit(a, g) for a in p), len(p), sum(hit(b, p) for b in g), len(g)


def summarise(per_session: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """Precision and recall pooled over sessions, with a bootstrap over sessions."""
    tot = per_session.sum(axis=0)
    W = cluster_bootstrap_counts(len(per_session), n_boot, seed).astype(float)
    boot = W @ per_session
    with np.errstate(invalid="ignore", divide="ignore"):
        prec_b, rec_b = boot[:, 0] / boot[:, 1], boot[:, 2] / boot[:, 3]
    out = {"predicted": int(tot[1]), "gold": int(tot[3])}
    for name, num, den, b in (("precision", tot[0], tot[1], prec_b), ("recall", tot[2], tot[3], rec_b)):
        lo, hi = percentile_interval(b)
        out[name] = None if den == 0 else round(float(num / den), 3)
        out[f"{name}_ci"] = [None if lo is None else round(lo, 3), None if hi is None else round(hi, 3)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus-dir")
    ap.add_argument("--model")
    args = ap.parse_args(argv)

    manifest = json.loads((V2 / "manifest.json").read_text(encoding="utf-8"))
    test = sorted(k for k, v in manifest["splits"].items() if v == "test")
    codes: dict[str, dict[int, list[str]]] = {}
    for line in (V2 / manifest["release"]).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        key = f"{r['corpus']} {r['session']}"
        if key in test:
            codes.setdefault(key, {})[int(r["utterance"])] = r["labels"]
    report: dict = {"release": manifest["release"], "test_sessions": len(test), "corpora": {}}
    for corpus, cache in (("annomi", "annomi-dev"), ("esconv", "esconv-dev")):
        keys = [k.split(" ", 1)[1] for k in test if k.startswith(corpus + " ")]
        cs = read_corpus(corpus, args.corpus_dir)
        analysed = cached_sessions({k: cs[k] for k in keys}, cache, args.model)
        rows = {kind: [] for kind in KINDS}
        for k in keys:
            gold = rupture_episodes(gold_session(cs[k], codes[f"{corpus} {k}"]))
            pred = rupture_episodes(analysed[k])
            for kind in KINDS:
                rows[kind].append(counts(gold, pred, kind))
        report["corpora"][corpus] = {
            "sessions": len(keys),
            **{kind: summarise(np.array(rows[kind], dtype=float)) for kind in KINDS},
        }
        report["corpora"][corpus]["_rows"] = {kind: rows[kind] for kind in KINDS}
    rows_by_corpus = {c: report["corpora"][c].pop("_rows") for c in list(report["corpora"])}
    allrows = {
        kind: np.array([r for rows in rows_by_corpus.values() for r in rows[kind]], dtype=float) for kind in KINDS
    }
    report["all"] = {kind: summarise(v) for kind, v in allrows.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "episodes.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    md = render(report)
    (RESULTS / "episodes.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    return 0


def _pr(d: dict, name: str) -> str:
    v, ci = d[name], d[f"{name}_ci"]
    if v is None:
        return "n/a"
    return f"{v:.2f} [{ci[0] if ci[0] is not None else 'n/a'}, {ci[1] if ci[1] is not None else 'n/a'}]"


def render(r: dict) -> str:
    lines = [
        f"Rupture-repair episodes on the fixed test set of release {r['release']} ({r['test_sessions']} sessions), "
        "predicted by the pipeline vs derived from the adjudicated codes:",
        "",
        "| corpus | episodes | gold | predicted | precision [95% CI] | recall [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for corpus, c in [*r["corpora"].items(), ("all", r["all"])]:
        for kind in KINDS:
            d = c[kind]
            lines.append(
                f"| {corpus} | {kind} | {d['gold']} | {d['predicted']} | {_pr(d, 'precision')} | {_pr(d, 'recall')} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
