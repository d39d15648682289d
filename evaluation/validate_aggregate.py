"""The default WAI mapping, and its validation on the development corpora, through the product.

    python -m evaluation.validate_aggregate [--write-default] [--corpus-dir DIR] [--limit N]

1. Analyses every development session of ESConv and AnnoMI with the pipeline `analyze` runs
   (diarize, segment, classify; evaluation/product.py; cached per model version), and takes each
   session's features from `alliance_nlp.aggregate.session_features`: the same units, the model's own
   thresholds for rupture episodes, the same code as the aggregate stage.
2. ESConv: client ratings as the public stand-in for WAI ratings: seeker empathy for Bond, seeker
   relevance for Goal and Task (1-5, the WAI-SR metric). Sessions in our annotation release are
   left out (the classifier trained on some of them). Grouped 5-fold cross-validation of the mapping
   (`alliance_nlp.mapping.WaiMapping.fit`): Spearman rho, Pearson r, MAE per subscale, with bootstrap
   intervals. Reported next to the published anchor rho = .15 (Goldberg et al., 2020).
3. AnnoMI: session MI quality (high/low). AUC of the Total estimate that the aggregate stage gives with
   the fitted mapping (no AnnoMI data used in fitting) and of a logistic regression on session
   features cross-validated grouped by video.
4. --write-default writes the mapping fitted on all eligible ESConv sessions to
   alliance_nlp/resources/wai_mapping.json.
Writes evaluation/results/aggregate.json and aggregate.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from alliance_nlp.aggregate import Aggregator, session_features
from alliance_nlp.integrity import refresh_manifest_for
from alliance_nlp.mapping import FEATURES, WaiMapping, default_mapping_path
from evaluation.product import cached_sessions
from training.corpora import read_annomi, read_esconv

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "evaluation" / "results"
ANCHOR_RHO = 0.15
MIN_CLASS_FOR_AUC = 3  # fewer transcripts than this in either quality class: no AUC is reported


def feature_matrix(sessions: dict, ids: list[str]) -> np.ndarray:
    return np.array([[session_features(sessions[k])[f] for f in FEATURES] for k in ids])


def rating(meta: dict, key: str) -> float:
    try:
        return float((meta.get("seeker") or {}).get(key))
    except (TypeError, ValueError):
        return float("nan")


def boot_ci(fn, *arrays, n=1000, seed=0):
    """Percentile 95% interval over sessions resampled in pairs (scipy.stats.bootstrap)."""
    import warnings

    from scipy.stats import bootstrap

    from alliance_nlp.stats import percentile_interval

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap(arrays, fn, paired=True, vectorized=False, n_resamples=n, method="percentile", rng=seed)
    lo, hi = percentile_interval(res.bootstrap_distribution)
    return [round(lo, 3), round(hi, 3)]


def main(argv=None) -> int:
    from scipy.stats import pearsonr, spearmanr
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus-dir")
    ap.add_argument("--model")
    ap.add_argument("--write-default", action="store_true")
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--limit", type=int, help="smoke test: only the first N sessions of each corpus")
    args = ap.parse_args(argv)

    annotated, test_split = set(), set()
    try:
        from alliance_nlp.classify import default_model_path
        from alliance_nlp.model import read_config
        from training.dataset import build_rows, load_annotations, model_release

        release = model_release(read_config(args.model or default_model_path()))
        for r in build_rows(load_annotations(release), args.corpus_dir):
            annotated.add((r["corpus"], r["session"]))
            if r["split"] == "test":
                test_split.add((r["corpus"], r["session"]))
    except FileNotFoundError:
        print("warning: no annotation release; no sessions excluded", file=sys.stderr)

    report: dict = {
        "anchor": {
            "spearman_rho": ANCHOR_RHO,
            "source": "Goldberg et al. 2020, client-rated alliance from ASR transcripts of 1,235 sessions",
        }
    }
    # ---- ESConv ----
    es = {k: v for k, v in read_esconv(args.corpus_dir).items() if ("esconv", k) not in annotated}
    if args.limit:
        es = dict(list(es.items())[: args.limit])
    analysed = cached_sessions(es, "esconv-dev", args.model)
    ids = sorted(es)
    X = feature_matrix(analysed, ids)
    Y = {
        "bond": np.array([rating(es[k].meta, "empathy") for k in ids]),
        "goal": np.array([rating(es[k].meta, "relevance") for k in ids]),
        "task": np.array([rating(es[k].meta, "relevance") for k in ids]),
    }
    ok = ~np.isnan(Y["bond"]) & ~np.isnan(Y["goal"])
    X, ids = X[ok], [i for i, o in zip(ids, ok) if o]
    Y = {k: v[ok] for k, v in Y.items()}
    groups = np.arange(len(ids))
    cv_pred = {k: np.zeros(len(ids)) for k in Y}
    for tr, te in GroupKFold(n_splits=5).split(X, groups=groups):
        fold = WaiMapping.fit(X[tr], {k: v[tr] for k, v in Y.items()}, alpha=args.alpha).predict(X[te])
        for k in Y:
            cv_pred[k][te] = fold[k]
    es_rep = {
        "sessions": len(ids),
        "excluded_annotated": len([k for k in annotated if k[0] == "esconv"]),
        "targets": {"bond": "seeker empathy", "goal": "seeker relevance", "task": "seeker relevance"},
        "subscales": {},
    }
    for k in Y:
        y, p = Y[k], cv_pred[k]
        es_rep["subscales"][k] = {
            "spearman_rho": round(float(spearmanr(p, y)[0]), 3),
            "spearman_rho_ci": boot_ci(lambda a, b: spearmanr(a, b)[0], p, y),
            "pearson_r": round(float(pearsonr(p, y)[0]), 3),
            "mae": round(float(np.mean(np.abs(p - y))), 3),
            "mae_baseline_mean": round(float(np.mean(np.abs(y - y.mean()))), 3),
        }
    report["esconv"] = es_rep
    final = WaiMapping.fit(
        X,
        Y,
        groups=groups,
        alpha=args.alpha,
        meta={
            "name": "default (ESConv development ratings)",
            "instrument": "ESConv seeker survey (1-5) as WAI-SR stand-in",
            "sessions": len(ids),
        },
    )

    # ---- AnnoMI ----
    am = read_annomi(args.corpus_dir)
    if args.limit:
        am = dict(list(am.items())[: args.limit])
    am_analysed = cached_sessions(am, "annomi-dev", args.model)
    aids = sorted(am, key=int)
    Xa = feature_matrix(am_analysed, aids)
    ya = np.array([am[k].meta["mi_quality"] == "high" for k in aids], int)
    ga = np.array([am[k].group for k in aids])
    aggregate = Aggregator(final, n_boot=0)  # the aggregate stage, with the mapping just fitted
    total = np.array([aggregate(am_analysed[k]).results.estimates["total"].estimate for k in aids])
    lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000))
    cvp = cross_val_predict(
        lr, np.nan_to_num(Xa, nan=0.0), ya, groups=ga, cv=GroupKFold(n_splits=5), method="predict_proba"
    )[:, 1]
    held = np.array([("annomi", k) in test_split or ("annomi", k) not in annotated for k in aids])
    am_rep = {
        "sessions": len(aids),
        "high": int(ya.sum()),
        "low": int((1 - ya).sum()),
        "auc_total_estimate": round(float(roc_auc_score(ya, total)), 3),
        "auc_total_estimate_ci": boot_ci(
            lambda a, b: roc_auc_score(a, b) if 0 < a.sum() < len(a) else np.nan, ya, total
        ),
        "auc_features_grouped_cv": round(float(roc_auc_score(ya, cvp)), 3),
        "auc_features_grouped_cv_ci": boot_ci(
            lambda a, b: roc_auc_score(a, b) if 0 < a.sum() < len(a) else np.nan, ya, cvp
        ),
        "classifier_unseen": {"sessions": int(held.sum()), "low": int((1 - ya[held]).sum())},
    }
    if min(ya[held].sum(), held.sum() - ya[held].sum()) >= MIN_CLASS_FOR_AUC:
        am_rep["classifier_unseen"]["auc_total_estimate"] = round(float(roc_auc_score(ya[held], total[held])), 3)
    report["annomi"] = am_rep
    RESULTS.mkdir(parents=True, exist_ok=True)
    report["protocol"] = {
        "path": "whole sessions through Pipeline(diarize, segment, classify); features from "
        "alliance_nlp.aggregate.session_features; AnnoMI totals from the aggregate stage",
        "alpha": args.alpha,
    }
    (RESULTS / "aggregate.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / "aggregate.md").write_text(render(report) + "\n")
    print(render(report))
    if args.write_default:
        final.save(default_mapping_path())
        refresh_manifest_for(default_mapping_path())
        print(f"wrote {default_mapping_path()}", file=sys.stderr)
    return 0


def render(r: dict) -> str:
    e, a = r["esconv"], r["annomi"]
    lines = [
        f"ESConv development sessions not in our annotation release: n = {e['sessions']} "
        "(grouped 5-fold cross-validation of the mapping)",
        "",
        "| subscale | target | Spearman rho [95% CI] | Pearson r | MAE | MAE of predicting the mean |",
        "|---|---|---|---|---|---|",
    ]
    for k, v in e["subscales"].items():
        lines.append(
            f"| {k} | {e['targets'][k]} | {v['spearman_rho']:.2f} [{v['spearman_rho_ci'][0]:.2f}, "
            f"{v['spearman_rho_ci'][1]:.2f}] | {v['pearson_r']:.2f} | {v['mae']:.2f} | {v['mae_baseline_mean']:.2f} |"
        )
    lines += [
        "",
        f"Published anchor: Spearman rho = {r['anchor']['spearman_rho']:.2f} ({r['anchor']['source']}).",
        "",
        f"AnnoMI development transcripts: n = {a['sessions']} ({a['high']} high, {a['low']} low MI quality)",
        "",
        f"- AUC of the default Total estimate: {a['auc_total_estimate']:.2f} "
        f"[{a['auc_total_estimate_ci'][0]:.2f}, {a['auc_total_estimate_ci'][1]:.2f}]",
        f"- AUC of session features, logistic regression cross-validated grouped by video: "
        f"{a['auc_features_grouped_cv']:.2f} [{a['auc_features_grouped_cv_ci'][0]:.2f}, "
        f"{a['auc_features_grouped_cv_ci'][1]:.2f}]",
        f"- On the {a['classifier_unseen']['sessions']} transcripts the classifier never trained on "
        f"({a['classifier_unseen']['low']} low quality): AUC of the Total estimate "
        + (
            str(a["classifier_unseen"]["auc_total_estimate"])
            if "auc_total_estimate" in a["classifier_unseen"]
            else f"not reported (fewer than {MIN_CLASS_FOR_AUC} transcripts in a quality class)"
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
