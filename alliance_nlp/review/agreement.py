"""How far reviewers agree with each other and with the model: Cohen's kappa per label
(`sklearn.metrics.cohen_kappa_score`) on the utterances both sides labelled.

Reviewer pairs are compared on the utterances both reviewed (each reviewer's latest correction); a
reviewer is compared with the model on the utterances they reviewed, against the markers they were
shown (`model_labels` of the correction; the session's current markers when a line lacks them). Kappa
is undefined (None) when neither side varies on a label in the compared utterances; the share of
agreeing utterances is reported beside it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from ..labels import LABELS
from ..session import Session
from .store import Key

SHORT = {"rupture_withdrawal": "withdrawal", "rupture_confrontation": "confrontation"}


def _kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0 or len(set(a) | set(b)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        k = float(cohen_kappa_score(a, b))
    return k if k == k else None


def compare(sets_a: Sequence[set[str]], sets_b: Sequence[set[str]]) -> dict[str, Any]:
    """Per label: kappa, share agreeing and positives on each side; plus the mean kappa over labels."""
    per: dict[str, Any] = {}
    for lab in LABELS:
        a = [int(lab in s) for s in sets_a]
        b = [int(lab in s) for s in sets_b]
        per[lab] = {
            "kappa": _kappa(a, b),
            "agreement": (sum(x == y for x, y in zip(a, b)) / len(a)) if a else None,
            "positives": [sum(a), sum(b)],
        }
    ks = [v["kappa"] for v in per.values() if v["kappa"] is not None]
    return {
        "utterances": len(sets_a),
        "labels": per,
        "mean_kappa": sum(ks) / len(ks) if ks else None,
        "exact_agreement": (sum(x == y for x, y in zip(sets_a, sets_b)) / len(sets_a)) if sets_a else None,
    }


def review_agreement(
    corrections: Mapping[Key, Mapping[str, Any]], sessions: Mapping[str, Session] | None = None
) -> dict[str, Any]:
    """Reviewer-reviewer and reviewer-model agreement from the latest corrections (`store.latest`)."""
    by_rev: dict[str, dict[tuple[str, int], set[str]]] = {}
    model_of: dict[tuple[str, str, int], set[str] | None] = {}
    for (rev, sid, utt), rec in corrections.items():
        by_rev.setdefault(rev, {})[(sid, utt)] = set(rec.get("labels") or [])
        shown = rec.get("model_labels")
        if shown is None and sessions is not None and sid in sessions:
            utts = sessions[sid].utterances
            shown = list(utts[utt].markers) if utt < len(utts) else None
        model_of[(rev, sid, utt)] = None if shown is None else set(shown)
    reviewers = sorted(by_rev)
    pairs = []
    for a, b in combinations(reviewers, 2):
        common = sorted(set(by_rev[a]) & set(by_rev[b]))
        pairs.append({"reviewers": [a, b], **compare([by_rev[a][k] for k in common], [by_rev[b][k] for k in common])})
    vs_model = []
    for rev in reviewers:
        keys = [k for k in sorted(by_rev[rev]) if model_of.get((rev, k[0], k[1])) is not None]
        vs_model.append(
            {
                "reviewer": rev,
                **compare([by_rev[rev][k] for k in keys], [model_of[(rev, k[0], k[1])] or set() for k in keys]),
            }
        )
    return {
        "reviewers": {r: {"utterances": len(v), "sessions": len({s for s, _ in v})} for r, v in by_rev.items()},
        "pairs": pairs,
        "model": vs_model,
        "method": "Cohen's kappa per label (sklearn.metrics.cohen_kappa_score) on the utterances both sides "
        "labelled; None where neither side varies",
    }


def render_agreement(report: Mapping[str, Any]) -> str:
    """The agreement report as a plain-text table."""

    def k(x: Any) -> str:
        return "–" if x is None else f"{x:.2f}"

    names = [SHORT.get(lab, lab) for lab in LABELS]
    head = f"{'':<28}{'n':>6}  " + "  ".join(f"{n:>13}" for n in names) + f"  {'mean':>6}"
    lines = []
    revs = report.get("reviewers") or {}
    lines.append(
        f"{len(revs)} reviewer(s): "
        + ", ".join(
            f"{r} ({v['utterances']} utterances in {v['sessions']} session{'s' if v['sessions'] != 1 else ''})"
            for r, v in revs.items()
        )
    )
    lines.append("")
    lines.append("Reviewer vs reviewer (utterances both reviewed): Cohen's kappa per label")
    lines.append(head)
    if not report.get("pairs"):
        lines.append("  (needs two reviewers)")
    for p in report.get("pairs") or []:
        name = " ~ ".join(p["reviewers"])
        lines.append(
            f"{name[:27]:<28}{p['utterances']:>6}  "
            + "  ".join(f"{k(p['labels'][lab]['kappa']):>13}" for lab in LABELS)
            + f"  {k(p['mean_kappa']):>6}"
        )
    lines.append("")
    lines.append("Reviewer vs model (the markers the reviewer was shown): Cohen's kappa per label")
    lines.append(head)
    for m in report.get("model") or []:
        lines.append(
            f"{m['reviewer'][:27]:<28}{m['utterances']:>6}  "
            + "  ".join(f"{k(m['labels'][lab]['kappa']):>13}" for lab in LABELS)
            + f"  {k(m['mean_kappa']):>6}"
        )
    lines.append("")
    lines.append("–: undefined (the label does not vary on these utterances, on either side).")
    return "\n".join(lines)
