"""The default WAI mapping, and its validation on the development corpora, through the product.

    python -m evaluation.validate_aggregate [--write-default] [--corpus-dir DIR] [--limit N]

1. Analyses every development session of ESConv and AnnoMI with the pipeline `analyze` runs
   (diarize, segment, classify; evaluation/product.py; cached per model version), and takes each
   session's features from `alliance_nlp.aggregate.session_features`: the same units, the model's own
   thresholds for rupture episodes, the same code as the aggregate stage.
2. ESConv: client ratings as the public stand-in for WAI ratings: seeker empathy for Bond, seeker
   relevance for Goal and Task (1-5, the WAI-SR metric). Sessions the classifier trained or was tuned
   on (its annotation release's train and validation splits) are left out. Grouped 5-fold cross-validation of the mapping
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


ALPHAS = (1.0, 10.0, 100.0)
# the shipped family is fixed by design (sign-constrained, its own markers per subscale); the
# unconstrained ridge on all 13 features is run through the same protocol for comparison
FAMILIES = ("constrained", "ridge")


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0]) if len(a) > 2 and np.std(a) > 0 and np.std(b) > 0 else float("nan")


def select(
    X: np.ndarray, Y: dict, groups: np.ndarray, family: str, n_splits: int = 5
) -> tuple[tuple[str, float], dict]:
    """The penalty with the best mean grouped-CV Spearman rho over the subscales for `family`, using
    only the rows given (the inner loop of the nested cross-validation)."""
    from sklearn.model_selection import GroupKFold

    scores = {}
    candidates = [(family, a) for a in ALPHAS]
    for fam, alpha in candidates:
        pred = {k: np.full(len(X), np.nan) for k in Y}
        for tr, te in GroupKFold(n_splits=n_splits).split(X, groups=groups):
            m = WaiMapping.fit(X[tr], {k: v[tr] for k, v in Y.items()}, alpha=alpha, family=fam)
            for k, v in m.predict(X[te]).items():
                if k in pred:
                    pred[k][te] = v
        scores[f"{fam}:{alpha:g}"] = float(np.nanmean([_spearman(pred[k], Y[k]) for k in Y]))
    best = max(candidates, key=lambda c: scores[f"{c[0]}:{c[1]:g}"])
    return best, scores


def rated(es: dict, ids: list[str]) -> tuple[list[str], dict]:
    Y = {
        "bond": np.array([rating(es[k].meta, "empathy") for k in ids]),
        "goal": np.array([rating(es[k].meta, "relevance") for k in ids]),
        "task": np.array([rating(es[k].meta, "relevance") for k in ids]),
    }
    ok = ~np.isnan(Y["bond"]) & ~np.isnan(Y["goal"])
    return [i for i, o in zip(ids, ok) if o], {k: v[ok] for k, v in Y.items()}


def agreement_row(p: np.ndarray, y: np.ndarray) -> dict:
    from scipy.stats import pearsonr

    return {
        "spearman_rho": round(_spearman(p, y), 3),
        "spearman_rho_ci": boot_ci(lambda a, b: _spearman(a, b), p, y),
        "pearson_r": round(float(pearsonr(p, y)[0]), 3) if np.std(p) > 0 else None,
        "mae": round(float(np.mean(np.abs(p - y))), 3),
        "mae_baseline_mean": round(float(np.mean(np.abs(y - y.mean()))), 3),
    }


def main(argv=None) -> int:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    from alliance_nlp.indices import INDICES

    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus-dir")
    ap.add_argument("--model")
    ap.add_argument("--write-default", action="store_true")
    ap.add_argument("--limit", type=int, help="smoke test: only the first N sessions of each split")
    args = ap.parse_args(argv)

    seen_by_classifier: set = set()
    try:
        from alliance_nlp.classify import default_model_path
        from alliance_nlp.model import read_config
        from training.dataset import build_rows, load_annotations, model_release, release_splits

        release = model_release(read_config(args.model or default_model_path()))
        # the sessions the classifier trained or was tuned on (its release's train and validation
        # splits); the release's test sessions, like sessions outside it, are unseen by it
        seen_by_classifier = {
            (r["corpus"], r["session"])
            for r in build_rows(load_annotations(release), args.corpus_dir, splits=release_splits(release))
            if r["split"] != "test"
        }
    except FileNotFoundError:
        print("warning: no annotation release; no sessions excluded", file=sys.stderr)

    report: dict = {
        "anchor": {
            "spearman_rho": ANCHOR_RHO,
            "source": "Goldberg et al. 2020, client-rated alliance from ASR transcripts of 1,235 sessions",
        }
    }
    # ---- ESConv: sessions the classifier saw are left out; train = development, valid = held out ----
    es_all = {k: v for k, v in read_esconv(args.corpus_dir).items() if ("esconv", k) not in seen_by_classifier}
    analysed = cached_sessions(es_all, "esconv-dev", args.model)
    dev_ids = sorted(k for k in es_all if k.startswith("train:"))
    held_ids = sorted(k for k in es_all if k.startswith("valid:"))
    if args.limit:
        dev_ids, held_ids = dev_ids[: args.limit], held_ids[: args.limit]
    dev_ids, Y = rated(es_all, dev_ids)
    held_ids, Yh = rated(es_all, held_ids)
    X = feature_matrix(analysed, dev_ids)
    groups = np.arange(len(dev_ids))  # one conversation per group

    # 1. nested CV on ESConv train only: the inner loop picks the penalty, the outer one scores it
    def nested(family: str) -> tuple[dict, WaiMapping]:
        outer = {k: np.full(len(dev_ids), np.nan) for k in Y}
        chosen = []
        for tr, te in GroupKFold(n_splits=5).split(X, groups=groups):
            best, _ = select(X[tr], {k: v[tr] for k, v in Y.items()}, groups[tr], family)
            chosen.append(f"{best[0]}:{best[1]:g}")
            m = WaiMapping.fit(X[tr], {k: v[tr] for k, v in Y.items()}, alpha=best[1], family=family)
            for k, v in m.predict(X[te]).items():
                if k in outer:
                    outer[k][te] = v
        best, inner_scores = select(X, Y, groups, family)
        final = WaiMapping.fit(
            X,
            Y,
            groups=groups,
            alpha=best[1],
            family=family,
            meta={
                "name": f"default (ESConv train ratings, {family}, nested CV)",
                "instrument": "ESConv seeker survey (1-5) as WAI-SR stand-in",
                "sessions": len(dev_ids),
            },
        )
        rep = {
            "sessions": len(dev_ids),
            "chosen_per_outer_fold": chosen,
            "selected_alpha": best[1],
            "inner_cv_mean_rho": inner_scores,
            "subscales": {k: agreement_row(outer[k], Y[k]) for k in Y},
        }
        return rep, final

    # 2. once, on ESConv valid conversations no step touched: the aggregate stage with the final mapping
    def held_out(final: WaiMapping) -> dict:
        agg = Aggregator(final, n_boot=200)
        est: dict[str, list] = {k: [] for k in ("goal", "task", "bond")}
        lo: dict[str, list] = {k: [] for k in est}
        hi: dict[str, list] = {k: [] for k in est}
        bounded = dict.fromkeys(est, 0)
        idx: dict[str, list] = {name: [] for name in INDICES}
        for sid in held_ids:
            res = agg(analysed[sid]).results
            for k in est:
                e = res.estimates[k]
                est[k].append(e.estimate)
                lo[k].append(e.low)
                hi[k].append(e.high)
                bounded[k] += e.bound is not None
            for name in INDICES:
                idx[name].append(res.indices[name].value)
        held: dict = {
            "sessions": len(held_ids),
            "targets": {"bond": "seeker empathy", "goal": "seeker relevance", "task": "seeker relevance"},
            "subscales": {},
            "indices": {},
        }
        for k in est:
            p, y = np.array(est[k], float), Yh[k]
            low, high = np.array(lo[k], float), np.array(hi[k], float)
            cover = (y >= low) & (y <= high)
            held["subscales"][k] = {
                **agreement_row(p, y),
                "interval_coverage_95": round(float(cover.mean()), 3),
                "interval_median_width": round(float(np.median(high - low)), 3),
                "intervals_cut_at_scale_end": bounded[k],
            }
        for name in INDICES:
            v = np.array(idx[name], float)
            held["indices"][name] = {
                t: {"spearman_rho": round(_spearman(v, Yh[t]), 3), "spearman_rho_ci": boot_ci(_spearman, v, Yh[t])}
                for t in ("bond", "goal")
            }
        g, t = np.array(est["goal"], float), np.array(est["task"], float)
        held["goal_vs_task"] = {
            "mean_abs_difference": round(float(np.mean(np.abs(g - t))), 3),
            "identical_share": round(float(np.mean(np.abs(g - t) < 1e-9)), 3),
            "spearman_rho": round(_spearman(g, t), 3),
        }
        return held

    finals = {}
    for family in FAMILIES:
        cv_rep, finals[family] = nested(family)
        report.setdefault("families", {})[family] = {
            "esconv_train_nested_cv": cv_rep,
            "esconv_valid_held_out": held_out(finals[family]),
        }
    final = finals["constrained"]
    report["shipped_family"] = "constrained"
    report["esconv_train_nested_cv"] = report["families"]["constrained"]["esconv_train_nested_cv"]
    report["esconv_valid_held_out"] = report["families"]["constrained"]["esconv_valid_held_out"]
    report["selected"] = {"family": "constrained", "alpha": report["esconv_train_nested_cv"]["selected_alpha"]}

    # 3. AnnoMI high vs low MI quality: Total estimate and indices, intervals over videos
    am = read_annomi(args.corpus_dir)
    if args.limit:
        am = dict(list(am.items())[: args.limit])
    am_analysed = cached_sessions(am, "annomi-dev", args.model)
    aids = sorted(am, key=int)
    ya = np.array([am[k].meta["mi_quality"] == "high" for k in aids], int)
    agg0 = Aggregator(final, n_boot=0)
    results = {k: agg0(am_analysed[k]).results for k in aids}
    total = np.array([results[k].estimates["total"].estimate for k in aids])

    def auc(a, b):
        return roc_auc_score(a, b) if 0 < a.sum() < len(a) else np.nan

    unseen = np.array([("annomi", k) not in seen_by_classifier for k in aids])
    ridge_total = np.array(
        [Aggregator(finals["ridge"], n_boot=0)(am_analysed[k]).results.estimates["total"].estimate for k in aids]
    )
    am_rep = {
        "auc_total_estimate_ridge": round(float(auc(ya, ridge_total)), 3),
        "sessions": len(aids),
        "high": int(ya.sum()),
        "low": int((1 - ya).sum()),
        "auc_total_estimate": round(float(auc(ya, total)), 3),
        "auc_total_estimate_ci": boot_ci(auc, ya, total),
        "indices_auc": {},
        "classifier_unseen": {"sessions": int(unseen.sum()), "low": int((1 - ya[unseen]).sum())},
    }
    for name in INDICES:
        v = np.array([results[k].indices[name].value for k in aids], float)
        sign = -1.0 if name == "rupture" else 1.0
        am_rep["indices_auc"][name] = {"auc": round(float(auc(ya, sign * v)), 3), "auc_ci": boot_ci(auc, ya, sign * v)}
    if min(ya[unseen].sum(), unseen.sum() - ya[unseen].sum()) >= MIN_CLASS_FOR_AUC:
        am_rep["classifier_unseen"]["auc_total_estimate"] = round(float(auc(ya[unseen], total[unseen])), 3)
    report["annomi"] = am_rep
    report["protocol"] = {
        "path": "whole sessions through Pipeline(diarize, segment, classify) (evaluation/product.py); "
        "features from alliance_nlp.aggregate.session_features; held-out estimates, intervals and "
        "indices from the aggregate stage",
        "excluded": "every session the classifier trained or was tuned on (its annotation release's train "
        "and validation splits)",
        "selection": "family and penalty chosen by grouped 5-fold CV inside each outer fold (ESConv train)",
        "candidates": {"families": list(FAMILIES), "alphas": list(ALPHAS)},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "aggregate.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / "aggregate.md").write_text(render(report) + "\n")
    print(render(report))
    if args.write_default:
        final.save(default_mapping_path())
        refresh_manifest_for(default_mapping_path())
        print(f"wrote {default_mapping_path()}", file=sys.stderr)
    return 0


def render(r: dict) -> str:
    cv, h, a = r["esconv_train_nested_cv"], r["esconv_valid_held_out"], r["annomi"]

    def row(k: str, v: dict, target: str) -> str:
        ci = v["spearman_rho_ci"]
        return (
            f"| {k} | {target} | {v['spearman_rho']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] | "
            f"{v['pearson_r'] if v['pearson_r'] is not None else 'n/a'} | {v['mae']:.2f} | {v['mae_baseline_mean']:.2f} |"
        )

    lines = [
        f"Shipped mapping: {r['selected']['family']} (alpha {r['selected']['alpha']:g}, chosen by grouped CV on "
        "ESConv train); outer folds chose " + ", ".join(cv["chosen_per_outer_fold"]),
        "",
        f"ESConv train, nested grouped 5-fold cross-validation (n = {cv['sessions']}):",
        "",
        "| subscale | target | Spearman rho [95% CI] | Pearson r | MAE | MAE of predicting the mean |",
        "|---|---|---|---|---|---|",
        *[row(k, v, h["targets"][k]) for k, v in cv["subscales"].items()],
        "",
        f"ESConv valid, held out, reported once (n = {h['sessions']}):",
        "",
        "| subscale | target | Spearman rho [95% CI] | Pearson r | MAE | MAE of predicting the mean | 95% PI coverage | median width | cut at 1 or 5 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k, v in h["subscales"].items():
        lines.append(
            row(k, v, h["targets"][k])
            + f" {v['interval_coverage_95']:.3f} | {v['interval_median_width']:.2f} | {v['intervals_cut_at_scale_end']} |"
        )
    lines += [
        "",
        "Transparent indices on the held-out conversations (Spearman rho with seeker empathy / relevance):",
        "",
        "| index | empathy | relevance |",
        "|---|---|---|",
    ]
    for name, v in h["indices"].items():
        lines.append(
            f"| {name} | {v['bond']['spearman_rho']:.2f} [{v['bond']['spearman_rho_ci'][0]:.2f}, "
            f"{v['bond']['spearman_rho_ci'][1]:.2f}] | {v['goal']['spearman_rho']:.2f} "
            f"[{v['goal']['spearman_rho_ci'][0]:.2f}, {v['goal']['spearman_rho_ci'][1]:.2f}] |"
        )
    rg = r["families"]["ridge"]
    lines += [
        "",
        f"Comparison, the unconstrained ridge on all 13 features (alpha {rg['esconv_train_nested_cv']['selected_alpha']:g}), "
        "same protocol: nested-CV rho "
        + ", ".join(f"{k} {v['spearman_rho']:.2f}" for k, v in rg["esconv_train_nested_cv"]["subscales"].items())
        + "; held-out rho "
        + ", ".join(
            f"{k} {v['spearman_rho']:.2f} [{v['spearman_rho_ci'][0]:.2f}, {v['spearman_rho_ci'][1]:.2f}]"
            for k, v in rg["esconv_valid_held_out"]["subscales"].items()
        )
        + f"; AnnoMI AUC of its Total {a['auc_total_estimate_ridge']:.2f}.",
    ]
    gt = h["goal_vs_task"]
    lines += [
        "",
        f"Goal vs Task on the held-out conversations: mean |Goal - Task| = {gt['mean_abs_difference']:.3f}, "
        f"identical in {gt['identical_share']:.0%}, Spearman rho {gt['spearman_rho']:.2f}.",
        "",
        f"Published anchor: Spearman rho = {r['anchor']['spearman_rho']:.2f} ({r['anchor']['source']}).",
        "",
        f"AnnoMI development transcripts: n = {a['sessions']} ({a['high']} high, {a['low']} low MI quality)",
        "",
        f"- AUC of the Total estimate: {a['auc_total_estimate']:.2f} "
        f"[{a['auc_total_estimate_ci'][0]:.2f}, {a['auc_total_estimate_ci'][1]:.2f}]",
        "- AUC of the indices (rupture reversed): "
        + ", ".join(
            f"{n} {v['auc']:.2f} [{v['auc_ci'][0]:.2f}, {v['auc_ci'][1]:.2f}]" for n, v in a["indices_auc"].items()
        ),
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
