"""The speed benchmark's paired comparison: orientation of the ratio when the load order alternates.

The workers are replaced by a fake (no model is loaded, nothing is timed): this checks the bookkeeping
that turns per-process pass times into the ratio the model card states."""

import argparse

from evaluation import bench_classifier


def test_paired_ratio_keeps_its_orientation_when_the_load_order_swaps(monkeypatch):
    speed = {"fast": 2.0, "slow": 1.0}  # seconds per pass = 1 / speed
    calls = []

    def fake_worker(args, task, batch_size, dtype=None, model=None, compare=None):
        assert task == "pair"
        calls.append((model, compare))
        first, second = model, compare
        return {
            "utterances": 120,
            "seconds": {"model": [1 / speed[first]] * 2, "compare": [1 / speed[second]] * 2},
            "utterances_per_s": {"model": 120 * speed[first], "compare": 120 * speed[second]},
            "ratio_model_over_compare": speed[first] / speed[second],
        }

    monkeypatch.setattr(bench_classifier, "run_worker", fake_worker)
    args = argparse.Namespace(model="fast", compare="slow", rounds=4, passes=2, threads=2)
    out = bench_classifier.compare(args)
    assert [c[0] for c in calls] == ["fast", "slow", "fast", "slow"]  # the load order alternates
    assert out["ratio_per_process"] == [2.0] * 4 and out["ratio_model_over_compare"] == 2.0
    assert out["model"]["utterances_per_s"] == 240 and out["compare"]["utterances_per_s"] == 120
    assert [p["loaded_first"] for p in out["processes"]] == ["model", "compare"] * 2
