"""The model card's metrics block is written from the evaluation results, and stays true to them."""

import json
from pathlib import Path

from evaluation import eval_classifier

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "evaluation" / "results" / "classifier.json"
CARD = ROOT / "models" / "alliance-markers-v2" / "README.md"


def test_update_card_rewrites_only_the_metrics_block(tmp_path):
    r = json.loads(RESULTS.read_text())
    card = tmp_path / "README.md"
    card.write_text("# card\nintro\n<!-- metrics:begin -->\nstale 0.999\n<!-- metrics:end -->\nlimits\n")
    eval_classifier.update_card(card, r)
    text = card.read_text()
    assert text.startswith("# card\nintro\n") and text.endswith("<!-- metrics:end -->\nlimits\n")
    assert "stale" not in text
    ours = r["results"]["classifier"]
    assert f"{ours['macro_f1']:.3f}" in text and "### Per label: fine-tuned classifier (ours)" in text
    assert "Per label: TF-IDF" not in text  # baselines appear in the summary only


def test_shipped_card_matches_committed_results():
    """The shipped card's block is what eval_classifier writes from the committed results."""
    r = json.loads(RESULTS.read_text())
    text = CARD.read_text()
    block = text.split("<!-- metrics:begin -->\n", 1)[1].split("<!-- metrics:end -->", 1)[0]
    assert block == eval_classifier.render_card(r)
    assert r["model_config"]["name"] == "alliance-markers-v2"


def test_card_reports_threshold_transfer_ablations_and_cost():
    """The figures issue 11 asks for are in the card: per label the gap between F1 at the shipped
    threshold and the best possible on test, the paired difference per corpus, the ablation rows and
    the cost per 1,000 utterances, all from the committed results."""
    r = json.loads(RESULTS.read_text())
    text = eval_classifier.render_card(r)
    ours = r["results"]["classifier"]["labels"]
    for label, x in ours.items():
        gap = x["f1_best"] - x["f1"]
        assert gap >= -1e-9  # the best threshold on test is at least as good as any fixed one
        assert f"| `{label}` | {x['f1']:.3f} | {x['f1_best']:.3f} | {gap:.3f} |" in text
    for corpus, v in r["by_corpus"].items():
        assert set(v["macro_f1_difference"]) == set(r["results"]) - {"classifier"}
        assert f"- {corpus}, vs TF-IDF + logistic regression: 95% CI" in text
    assert "## Ablations" in text and all(row["name"] in text for row in r["ablations"]["rows"])
    assert "## Cost" in text and "seconds per 1,000 utterances" in text
