"""Threshold rules: the max-F1 cut, the bagged cut over session resamples, and the validation-halves study."""

import json

import numpy as np

from alliance_nlp.labels import LABELS
from evaluation.threshold_transfer import halves_study, write_thresholds
from training.thresholds import bagged_threshold, best_threshold, tune_thresholds


def sessions(n_sessions=40, per=30, seed=0):
    """Scores where positives score higher on average; a few sessions carry most of the positives."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n_sessions * per) < 0.08).astype(int)
    p = np.clip(0.25 + 0.3 * y + rng.normal(0, 0.15, len(y)), 0, 1)
    groups = np.repeat([f"s{i}" for i in range(n_sessions)], per)
    return y, p, groups


def test_bagged_cut_is_the_median_of_resampled_max_f1_cuts_and_is_deterministic():
    y, p, g = sessions()
    t = bagged_threshold(y, p, g, n_boot=50, seed=3)
    assert t == bagged_threshold(y, p, g, n_boot=50, seed=3)
    # it lies within the range of the cuts of single resamples, near the plain max-F1 cut
    assert abs(t - best_threshold(y, p)[0]) < 0.2
    assert 0.0 < t < 1.0


def test_bagged_cut_without_positives_is_one_half():
    y, p, g = sessions()
    assert bagged_threshold(np.zeros_like(y), p, g) == 0.5


def test_tune_thresholds_uses_the_bagged_rule_only_with_groups():
    y, p, g = sessions()
    Y, P = np.c_[y, y], np.c_[p, p]
    plain = tune_thresholds(Y, P)
    assert plain[0] == best_threshold(y, p)[0]
    assert tune_thresholds(Y, P, g)[0] == bagged_threshold(y, p, g)


def test_halves_study_scores_each_rule_on_the_half_it_did_not_choose_on():
    y, p, g = sessions(seed=1)
    Y = np.repeat(y[:, None], len(LABELS), 1)
    P = np.repeat(p[:, None], len(LABELS), 1)
    out = halves_study(Y, P, g, repeats=5)
    for rule in ("max_f1", "bagged"):
        for lab in LABELS:
            assert out[rule][lab]["gap"] >= 0  # never above the held-out half's own best F1
            assert 0 < out[rule][lab]["f1"] <= 1
        assert abs(out[rule]["macro_f1"] - np.mean([out[rule][l]["f1"] for l in LABELS])) < 1e-12


def test_write_thresholds_records_the_rule_and_keeps_the_folder_verifiable(tmp_path):
    from alliance_nlp.integrity import verify_folder, write_manifest

    cfg = {"calibration": {"threshold": [0.5] * len(LABELS), "temperature": [1.0] * len(LABELS)}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    write_manifest(tmp_path)
    study = {"max_f1": {"macro_f1": 0.40}, "bagged": {"macro_f1": 0.41}}
    write_thresholds(tmp_path, [0.1 * (i + 1) for i in range(len(LABELS))], "bagged", study)
    got = json.loads((tmp_path / "config.json").read_text())["calibration"]
    assert got["threshold"][0] == 0.1 and got["threshold_selection"]["rule"] == "bagged"
    assert got["temperature"] == [1.0] * len(LABELS)
    verify_folder(tmp_path)  # the manifest follows the new config
