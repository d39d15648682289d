"""Default calibration of the session estimates, and its validation on the development corpora.

    python evaluation/validate_aggregate.py [--write-default] [--corpus-dir DIR]

1. Tags every development session of ESConv and AnnoMI with the shipped classifier (cached).
2. ESConv: client ratings as the public stand-in for WAI ratings — seeker empathy for Bond, seeker
   relevance for Goal and Task (1-5, the WAI-SR metric). Sessions in our annotation release are
   left out (the classifier trained on some of them). Grouped 5-fold cross-validation of the ridge
   mapping: Spearman rho, Pearson r, MAE per subscale, with bootstrap intervals. Reported next to
   the published anchor rho = .15 (Goldberg et al., 2020).
3. AnnoMI: session MI quality (high/low). AUC of the default Total estimate (no AnnoMI data used in
   fitting) and of a logistic regression on session features cross-validated grouped by video; on
   all development transcripts (most low-quality ones are in the classifier's training data, so
   this is optimistic) and on those in the classifier's held-out test split.
4. --write-default fits the mapping on all eligible ESConv sessions and writes it to
   alliance_nlp/resources/calibration_default.json.
Writes evaluation/results/aggregate.json and aggregate.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from alliance_nlp.aggregate import DEFAULT_CALIBRATION, FEATURES, AllianceAggregator, session_features  # noqa: E402
from training.corpora import read_annomi, read_esconv, to_session  # noqa: E402
from alliance_nlp.labels import LABELS  # noqa: E402

RESULTS = ROOT / "evaluation" / "results"
CACHE = ROOT / "evaluation" / "cache"
ANCHOR_RHO = 0.15
MIN_CLASS_FOR_AUC = 3  # fewer transcripts than this in either quality class: no AUC is reported


def tag_all(sessions: dict, cache_name: str, model: str | None) -> dict[str, np.ndarray]:
    """Marker probabilities per session, cached by model fingerprint."""
    from alliance_nlp.classify import MarkerClassifier
    from tqdm import tqdm

    clf = MarkerClassifier.load(path=model)
    fp = getattr(clf, "fingerprint", None) or _fingerprint(model)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{cache_name}-{fp}.npz"
    if path.is_file():
        d = np.load(path, allow_pickle=False)
        if set(d.files) >= set(sessions):
            return {k: d[k] for k in sessions}
    out = {}
    keys = list(sessions)
    step = 64  # sessions per call: their utterances share length-sorted batches
    for i in tqdm(range(0, len(keys), step), desc=f"tagging {cache_name} ({len(keys)} sessions)",
                  unit="x64", file=sys.stderr):
        chunk = keys[i:i + step]
        for k, P in zip(chunk, clf.predict_proba([to_session(sessions[k]) for k in chunk])):
            out[k] = np.asarray(P)
    np.savez_compressed(path, **out)
    return out


def _fingerprint(model: str | None) -> str:
    """Short hash of the classifier's files, so cached probabilities follow the model."""
    import hashlib
    from alliance_nlp.classify import REPO_MODEL_DIR
    root = Path(model) if model else REPO_MODEL_DIR
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.suffix in (".json", ".safetensors"):
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def features(cs, P: np.ndarray, agg_thresholds: dict | None = None) -> np.ndarray:
    s = to_session(cs)
    for u, p in zip(s.utterances, P):
        u.probabilities = dict(zip(LABELS, p.tolist()))
        u.markers = [l for l, v in u.probabilities.items() if v >= (agg_thresholds or {}).get(l, 0.5)]
    f = session_features(s)
    return np.array([f[k] for k in FEATURES])


def rating(meta: dict, key: str) -> float:
    try:
        return float((meta.get("seeker") or {}).get(key))
    except (TypeError, ValueError):
        return float("nan")


def boot_ci(fn, *arrays, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    n_obs = len(arrays[0])
    vals = []
    for _ in range(n):
        i = rng.integers(0, n_obs, n_obs)
        with np.errstate(all="ignore"):
            v = fn(*(a[i] for a in arrays))
        if np.isfinite(v):
            vals.append(v)
    return [round(float(np.quantile(vals, 0.025)), 3), round(float(np.quantile(vals, 0.975)), 3)]


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
        from alliance_nlp.classify import default_model_path, read_config
        from training.dataset import build_rows, load_annotations, model_release
        release = model_release(read_config(args.model or default_model_path()))
        for r in build_rows(load_annotations(release), args.corpus_dir):
            annotated.add((r["corpus"], r["session"]))
            if r["split"] == "test":
                test_split.add((r["corpus"], r["session"]))
    except FileNotFoundError:
        print("warning: no annotation release; no sessions excluded", file=sys.stderr)

    report: dict = {"anchor": {"spearman_rho": ANCHOR_RHO, "source": "Goldberg et al. 2020, client-rated "
                               "alliance from ASR transcripts of 1,235 sessions"}}
    # ---- ESConv ----
    es = {k: v for k, v in read_esconv(args.corpus_dir).items() if ("esconv", k) not in annotated}
    if args.limit:
        es = dict(list(es.items())[:args.limit])
    P = tag_all(es, "esconv", args.model)
    ids = sorted(es)
    X = np.array([features(es[k], P[k]) for k in ids])
    Y = {"bond": np.array([rating(es[k].meta, "empathy") for k in ids]),
         "goal": np.array([rating(es[k].meta, "relevance") for k in ids]),
         "task": np.array([rating(es[k].meta, "relevance") for k in ids])}
    ok = ~np.isnan(Y["bond"]) & ~np.isnan(Y["goal"])
    X, ids = X[ok], [i for i, o in zip(ids, ok) if o]
    Y = {k: v[ok] for k, v in Y.items()}
    groups = np.arange(len(ids))
    cv_pred = {k: np.zeros(len(ids)) for k in Y}
    for tr, te in GroupKFold(n_splits=5).split(X, groups=groups):
        agg = AllianceAggregator.fit(X[tr], {k: v[tr] for k, v in Y.items()}, alpha=args.alpha)
        for k in Y:
            cv_pred[k][te] = np.clip(agg.models[k].predict(X[te]), 1, 5)
    es_rep = {"sessions": len(ids), "excluded_annotated": len([k for k in annotated if k[0] == "esconv"]),
              "targets": {"bond": "seeker empathy", "goal": "seeker relevance", "task": "seeker relevance"},
              "subscales": {}}
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
    final = AllianceAggregator.fit(X, Y, alpha=args.alpha, meta={
        "name": "default (ESConv development ratings)", "instrument": "ESConv seeker survey (1-5) as WAI-SR stand-in",
        "sessions": len(ids)})

    # ---- AnnoMI ----
    am = read_annomi(args.corpus_dir)
    if args.limit:
        am = dict(list(am.items())[:args.limit])
    Pa = tag_all(am, "annomi", args.model)
    aids = sorted(am, key=int)
    Xa = np.array([features(am[k], Pa[k]) for k in aids])
    ya = np.array([am[k].meta["mi_quality"] == "high" for k in aids], int)
    ga = np.array([am[k].group for k in aids])
    total = np.array([np.mean([np.clip(final.models[s].predict(x[None])[0], 1, 5) for s in ("goal", "task", "bond")])
                      for x in Xa])
    lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000))
    cvp = cross_val_predict(lr, np.nan_to_num(Xa, nan=0.0), ya, groups=ga, cv=GroupKFold(n_splits=5),
                            method="predict_proba")[:, 1]
    held = np.array([("annomi", k) in test_split or ("annomi", k) not in annotated for k in aids])
    am_rep = {"sessions": len(aids), "high": int(ya.sum()), "low": int((1 - ya).sum()),
              "auc_total_estimate": round(float(roc_auc_score(ya, total)), 3),
              "auc_total_estimate_ci": boot_ci(lambda a, b: roc_auc_score(a, b) if 0 < a.sum() < len(a) else np.nan, ya, total),
              "auc_features_grouped_cv": round(float(roc_auc_score(ya, cvp)), 3),
              "auc_features_grouped_cv_ci": boot_ci(lambda a, b: roc_auc_score(a, b) if 0 < a.sum() < len(a) else np.nan, ya, cvp),
              "classifier_unseen": {"sessions": int(held.sum()), "low": int((1 - ya[held]).sum())}}
    if min(ya[held].sum(), held.sum() - ya[held].sum()) >= MIN_CLASS_FOR_AUC:
        am_rep["classifier_unseen"]["auc_total_estimate"] = round(float(roc_auc_score(ya[held], total[held])), 3)
    report["annomi"] = am_rep
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "aggregate.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / "aggregate.md").write_text(render(report) + "\n")
    print(render(report))
    if args.write_default:
        final.save(DEFAULT_CALIBRATION)
        print(f"wrote {DEFAULT_CALIBRATION}", file=sys.stderr)
    return 0


def render(r: dict) -> str:
    e, a = r["esconv"], r["annomi"]
    lines = [f"ESConv development sessions not in our annotation release: n = {e['sessions']} "
             "(grouped 5-fold cross-validation of the mapping)", "",
             "| subscale | target | Spearman rho [95% CI] | Pearson r | MAE | MAE of predicting the mean |",
             "|---|---|---|---|---|---|"]
    for k, v in e["subscales"].items():
        lines.append(f"| {k} | {e['targets'][k]} | {v['spearman_rho']:.2f} [{v['spearman_rho_ci'][0]:.2f}, "
                     f"{v['spearman_rho_ci'][1]:.2f}] | {v['pearson_r']:.2f} | {v['mae']:.2f} | {v['mae_baseline_mean']:.2f} |")
    lines += ["", f"Published anchor: Spearman rho = {r['anchor']['spearman_rho']:.2f} ({r['anchor']['source']}).", "",
              f"AnnoMI development transcripts: n = {a['sessions']} ({a['high']} high, {a['low']} low MI quality)", "",
              f"- AUC of the default Total estimate: {a['auc_total_estimate']:.2f} "
              f"[{a['auc_total_estimate_ci'][0]:.2f}, {a['auc_total_estimate_ci'][1]:.2f}]",
              f"- AUC of session features, logistic regression cross-validated grouped by video: "
              f"{a['auc_features_grouped_cv']:.2f} [{a['auc_features_grouped_cv_ci'][0]:.2f}, "
              f"{a['auc_features_grouped_cv_ci'][1]:.2f}]",
              f"- On the {a['classifier_unseen']['sessions']} transcripts the classifier never trained on "
              f"({a['classifier_unseen']['low']} low quality): AUC of the Total estimate "
              + (str(a['classifier_unseen']['auc_total_estimate']) if 'auc_total_estimate' in a['classifier_unseen']
                 else f"not reported (fewer than {MIN_CLASS_FOR_AUC} transcripts in a quality class)")]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
