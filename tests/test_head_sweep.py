"""The fixed-encoder ablation harness: the repair-structure gate and the ablation collector."""

import json

import numpy as np

from alliance_nlp.labels import LABELS
from evaluation import ablations
from training.head_sweep import REPAIR, RUPTURES, prior_rupture, repair_structure


def test_prior_rupture_looks_only_back_and_only_k_utterances():
    P = np.zeros((6, len(LABELS)))
    P[1, RUPTURES[0]] = 0.9
    P[3, RUPTURES[1]] = 0.4
    got = prior_rupture(P, k=2)
    # utterance 0 has nothing before it; 1 does not see itself; 4 sees 2-3; 5 sees 3-4 only
    np.testing.assert_allclose(got, [0.0, 0.0, 0.9, 0.9, 0.4, 0.4])


def test_repair_structure_reports_each_gate_and_the_share_after_a_rupture():
    rng = np.random.default_rng(0)

    def session(n):
        P = rng.random((n, len(LABELS))) * 0.2
        Y = np.zeros((n, len(LABELS)))
        Y[5, RUPTURES[0]] = Y[6, REPAIR] = Y[15, REPAIR] = 1  # one repair after a rupture, one not
        P[6, REPAIR] = P[15, REPAIR] = 0.9
        return P, Y

    Pv, Yv = zip(*(session(20) for _ in range(3)))
    Pt, Yt = zip(*(session(20) for _ in range(3)))
    r = repair_structure(list(Pv), list(Yv), list(Pt), list(Yt), k=4)
    assert {"gate_0.0", "gate_0.5", "gate_1.0"} <= set(r)
    assert r["gold_repairs_after_gold_rupture"] == 0.5
    assert r["gate_0.0"]["f1"] == 1.0  # the plain repair score separates these toy repairs


def test_ablation_rows_come_from_the_results_files(tmp_path, monkeypatch):
    res = {"results": {"classifier": {"macro_f1": 0.4, "macro_auprc": 0.41, "labels": {}}}}
    for i, l in enumerate(LABELS):
        res["results"]["classifier"]["labels"][l] = {"f1": 0.1 * i, "f1_best": 0.1 * i + 0.01}
    (tmp_path / "classifier.json").write_text(json.dumps(res))

    def run(f1):
        return {
            "macro_f1": f1,
            "macro_f1_oracle": f1,
            "macro_auprc": f1,
            "val_macro_auprc": f1,
            "f1": {l: f1 for l in LABELS},
        }

    sweep = {
        "base|default|13": run(0.3),
        "mpnet|default|13": run(0.4),
        "mpnet|default|14": run(0.5),
        "ft-MiniLM|default|13": run(0.41),
        "ft-MiniLM+mpnet|default|13": run(0.43),
    }
    (tmp_path / "head_sweep.json").write_text(json.dumps(sweep))
    monkeypatch.setattr(ablations, "RESULTS", tmp_path)
    assert ablations.main() == 0
    out = json.loads((tmp_path / "ablations.json").read_text())
    names = [r["name"] for r in out["rows"]]
    assert names[:3] == ["shipped", "fixed MiniLM-L6: default", "fixed mpnet: default"]
    assert names[3:] == [
        "fixed shipped fine-tuned MiniLM-L6: default",
        "fixed shipped fine-tuned MiniLM-L6 + all-mpnet-base-v2: default",
    ]
    # seeds of one encoder and variant are one row: their mean, with their spread
    mp = out["rows"][2]
    assert mp["seeds"] == 2 and abs(mp["macro_f1"] - 0.45) < 1e-9 and abs(mp["macro_f1_sd"] - 0.0707) < 1e-3
    assert out["rows"][1]["seeds"] == 1 and out["rows"][1]["macro_f1_sd"] is None
    # two encoders: a note compares them on their default variant
    assert any("mpnet (2 seeds) test macro-F1 0.450" in n and "fine-tuned" not in n for n in out["notes"])
    # the stronger encoder on top of the shipped one: its own note, with the validation difference
    assert any("validation difference +0.020" in n for n in out["notes"])
    assert abs(out["rows"][0]["macro_f1_oracle"] - (sum(0.1 * i for i in range(6)) / 6 + 0.01)) < 1e-9


def test_product_records_split_back_into_sessions_in_order():
    from evaluation.repair_structure import per_session

    rows = [{"corpus": "c", "session": s, "labels": [i] * len(LABELS)} for i, s in enumerate("aabbbc")]
    P = np.arange(6 * len(LABELS), dtype=float).reshape(6, len(LABELS))
    Ps, Ys = per_session(rows, P)
    assert [len(p) for p in Ps] == [2, 3, 1] and [len(y) for y in Ys] == [2, 3, 1]
    assert Ps[1][0, 0] == P[2, 0] and Ys[2][0, 0] == 5


def test_a_repair_gate_is_chosen_only_with_a_clear_validation_gain():
    from evaluation.repair_structure import MIN_VAL_GAIN, chosen_gate

    res = {g: {"val_auprc": v} for g, v in (("gate_0.0", 0.128), ("gate_0.5", 0.131), ("gate_1.0", 0.114))}
    assert chosen_gate(res) == "gate_0.0"  # a 0.003 gain is below the margin
    res["gate_1.0"]["val_auprc"] = 0.128 + MIN_VAL_GAIN + 0.001
    assert chosen_gate(res) == "gate_1.0"


def test_previous_other_is_the_other_speakers_latest_utterance_within_reach():
    from training.head_sweep import previous_other

    texts = ["a", "b", "c", "d"]
    roles = ["therapist", "client", "client", "therapist"]
    assert previous_other(texts, roles, 0) is None  # nothing before
    assert previous_other(texts, roles, 2) == "therapist: a"  # skips the client's own "b"
    assert previous_other(texts, roles, 3) == "client: c"
    assert previous_other(texts, roles, 2, back=1) is None  # the bid is out of reach


def test_pair_vectors_pool_the_utterances_own_tokens_in_the_light_of_the_bid(tmp_path):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from alliance_nlp.encoder import BaseEncoder
    from training.classifier import SessionData
    from training.head_sweep import pair_vectors

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", "therapist", "client", "how", "fine", "sad", "ok"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    # transformers 5 reads a vocab file path from `vocab` (with `vocab_file` every word became [UNK])
    BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"), do_lower_case=True).save_pretrained(tmp_path)
    tok = BertTokenizerFast.from_pretrained(tmp_path)
    assert tok.unk_token_id not in tok("therapist: how", add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    base = BaseEncoder(BertModel(cfg).eval(), tok, {"name": "tiny", "path": str(tmp_path), "sha256": None})

    def sess(texts, roles):
        return SessionData(("c", "s"), "train", texts, roles, np.zeros((len(texts), len(LABELS)), dtype=np.float32))

    with torch.inference_mode():
        a = pair_vectors(base, sess(["how", "fine"], ["therapist", "client"]))
        b = pair_vectors(base, sess(["sad", "fine"], ["therapist", "client"]))
        alone = pair_vectors(base, sess(["fine"], ["client"]))
    assert a.shape == (2, 16)
    assert not np.allclose(a[1], b[1])  # the same reply reads differently after a different bid
    # with no bid before it, an utterance is encoded alone, over all its tokens
    ids = tok("client: fine", return_tensors="pt")
    with torch.inference_mode():
        h = base.model(**ids).last_hidden_state[0]
    np.testing.assert_allclose(alone[0], h.mean(0).numpy(), rtol=1e-5, atol=1e-6)
