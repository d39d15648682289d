"""Marker classifier: hash check, tiny end-to-end train/save/load, shipped model, batching order.

Fast and offline: the tiny model is a randomly initialised 2-layer BERT (hidden 32) with a word-level
vocabulary written into tmp_path; every text here is invented.
"""

import json
import random

import numpy as np
import pytest
import torch

from alliance_nlp.classify import MarkerClassifier, default_model_path
from alliance_nlp.encoder import encode_batches, load_base, sha256_file, verify_sha256
from alliance_nlp.errors import IntegrityError, ModelError
from alliance_nlp.labels import LABELS
from alliance_nlp.session import Session, Speaker, Turn, Utterance
from training.classifier import TrainConfig, train

WORDS = (
    "i you we feel think want try talk week work sleep home help plan next time today okay no yes "
    "maybe really hard good bad sorry that sounds difficult what would like to do about it not sure "
    "know don't this won't for me can let's".split()
)
INVENTED = [
    ("therapist", "What would you like to get out of our time today?"),
    ("client", "I want to stop arguing with my brother every weekend."),
    ("therapist", "That sounds exhausting, and it makes sense you feel worn out."),
    ("client", "I don't know. Whatever."),
    ("therapist", "I may have pushed too fast just now. What felt off for you?"),
    ("client", "Maybe we could plan what I say on Saturday."),
]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", ".", ",", "?", "'", "therapist", "client"] + WORDS
    (d / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    # transformers 5 reads a vocab file path from `vocab`; with `vocab_file` every word became [UNK]
    BertTokenizerFast(vocab=str(d / "vocab.txt"), do_lower_case=True).save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(dict.fromkeys(vocab)),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(cfg).save_pretrained(d)
    return d


def tiny_rows(n_sessions=7, seed=0):
    rng = random.Random(seed)
    splits = ["train"] * 4 + ["validation"] * 2 + ["test"]
    rows = []
    for s in range(n_sessions):
        for pos in range(rng.randint(6, 11)):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14)))
            labels = [int(rng.random() < 0.3) for _ in LABELS]
            rows.append(
                {
                    "corpus": "toy",
                    "session": str(s),
                    "split": splits[s % len(splits)],
                    "position": pos,
                    "role": ("therapist", "client")[pos % 2],
                    "text": text,
                    "labels": labels,
                }
            )
    return rows


def tiny_config(base, **kw):
    return TrainConfig.from_dict(
        {
            "base_model": str(base),
            "max_length": 24,
            "epochs": 1,
            "max_steps": 2,
            "lora": {"r": 2, "lora_alpha": 4, "target_modules": ["query", "value"], "layers_to_transform": None},
            "context": {"dim": 16, "heads": 2, "ffn": 32, "window": 3},
            "chunk_utterances": 4,
            "utterances_per_step": 12,
            "encode_batch": 5,
            **kw,
        }
    )


def invented_session():
    turns = [
        Turn(spk, [Utterance(text, spk)])
        for spk, text in (("T" if role == "therapist" else "C", text) for role, text in INVENTED)
    ]
    return Session(
        "invented", turns=turns, speakers={"T": Speaker("T", role="therapist"), "C": Speaker("C", role="client")}
    )


def test_auxiliary_targets_train_and_are_not_shipped(tmp_path, tiny_base):
    """The corpora's own annotations shape training as a second head; the saved model is the plain
    six-label classifier (same files, same runtime), and the loss stays finite."""
    from training.auxiliary import GROUPS, N_AUX

    rows = tiny_rows()
    table = {
        ("toy", r["session"], r["position"]): ("annomi_behaviour", r["position"] % len(GROUPS["annomi_behaviour"]))
        for r in rows
        if r["role"] == "therapist"
    }
    logs = []
    out = tmp_path / "aux"
    train(tiny_config(tiny_base, aux_weight=0.5), rows, out, log=logs.append, aux_table=table)
    assert all(np.isfinite(r["train_loss"]) for r in logs if r["event"] == "epoch")
    from safetensors.torch import load_file

    shapes = {k: tuple(v.shape) for k, v in load_file(str(out / "context.safetensors")).items()}
    assert shapes["head.weight"][0] == len(LABELS) and all(s[0] != N_AUX for s in shapes.values())
    assert json.loads((out / "config.json").read_text())["training"]["config"]["aux_weight"] == 0.5
    MarkerClassifier.load(out, device="cpu").predict_proba([invented_session()])


def test_hash_verification_rejects_a_wrong_file(tmp_path, tiny_base):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"not the weights")
    assert verify_sha256(f, sha256_file(f)) == sha256_file(f)
    with pytest.raises(IntegrityError, match="SHA-256 mismatch"):
        verify_sha256(f, "0" * 64)
    with pytest.raises(IntegrityError):
        load_base(tiny_base, sha256="f" * 64)
    good = sha256_file(tiny_base / "model.safetensors")
    assert load_base(tiny_base, sha256=good).info["sha256"] == good


def test_tiny_model_trains_and_round_trips(tmp_path, tiny_base):
    logs = []
    out = tmp_path / "model"
    clf = train(tiny_config(tiny_base), tiny_rows(), out, log=logs.append)
    assert [r["event"] for r in logs][0] == "start" and any(r["event"] == "epoch" for r in logs)
    assert all(np.isfinite(r["train_loss"]) for r in logs if r["event"] == "epoch")
    # the artifact holds the adapter, context layer and config, never the base weights
    names = {p.name for p in out.rglob("*") if p.is_file()}
    assert {"config.json", "context.safetensors", "adapter_model.safetensors", "adapter_config.json"} <= names
    assert "model.safetensors" not in names
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["labels"] == list(LABELS) and len(cfg["calibration"]["threshold"]) == len(LABELS)
    assert cfg["base_model"]["sha256"] == sha256_file(tiny_base / "model.safetensors")

    session = invented_session()
    before = clf.predict_proba([session])[0]
    loaded = MarkerClassifier.load(out, device="cpu")  # LoRA merged into the base at load
    after = loaded.predict_proba([session])[0]
    assert after.shape == (6, len(LABELS))
    np.testing.assert_allclose(before, after, atol=1e-5)
    loaded(session)
    for u, p in zip(session.utterances, after):
        assert list(u.probabilities) == list(LABELS)
        assert u.markers == [l for l, v, t in zip(LABELS, p, loaded.thresholds) if v >= t]


def test_full_fine_tuning_saves_exact_changes_the_runtime_merges(tmp_path, tiny_base):
    """finetune: full trains the target weights at full rank (nothing else in the encoder) and writes
    their changes as exact LoRA factors, so the unchanged loader reproduces the trained model."""
    from safetensors.torch import load_file

    out = tmp_path / "full"
    clf = train(tiny_config(tiny_base, finetune="full", lr_encoder=1e-2), tiny_rows(), out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["finetune"] == "full"
    acfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert acfg["r"] == acfg["lora_alpha"] == 32  # min(out, in) of every target in the tiny BERT
    assert set(acfg["target_modules"]) == {"query", "value"}
    tensors = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert len(tensors) == 2 * 2 * 2  # 2 layers x (query, value) x (A, B)
    assert all(".layer." in k for k in tensors)
    assert max(float(v.abs().max()) for k, v in tensors.items() if "lora_B" in k) > 0  # the weights moved
    session = invented_session()
    np.testing.assert_allclose(
        clf.predict_proba([session])[0], MarkerClassifier.load(out, device="cpu").predict_proba([session])[0], atol=1e-5
    )
    with pytest.raises(ValueError, match="finetune"):
        train(tiny_config(tiny_base, finetune="partial"), tiny_rows(), tmp_path / "bad")


def test_length_sorted_batching_keeps_input_order(tiny_base):
    base = load_base(tiny_base)
    tok = base.tokenizer
    texts = [" ".join(WORDS[: (i * 7) % 23 + 1]) for i in range(13)]
    ids = tok(texts)["input_ids"]
    with torch.inference_mode():
        one_by_one = torch.cat([encode_batches(base.model, tok, [x], 1, "cpu") for x in ids])
        batched = encode_batches(base.model, tok, ids, 4, "cpu")
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-4)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="config.json missing"):
        MarkerClassifier.load(tmp_path / "absent")


@pytest.mark.parametrize("damage", ["config", "context", "adapter"])
def test_broken_model_folder_is_a_model_error(tmp_path, damage):
    """A damaged file in a model folder is refused with a ModelError naming it, never a traceback."""
    import shutil

    model = tmp_path / "m"
    shutil.copytree(default_model_path(), model)
    target = {
        "config": model / "config.json",
        "context": model / "context.safetensors",
        "adapter": model / "adapter" / "adapter_model.safetensors",
    }[damage]
    target.write_bytes(b"garbage")
    with pytest.raises(ModelError, match=target.name if damage != "adapter" else "adapter"):
        MarkerClassifier.load(model, device="cpu")


@pytest.mark.skipif(not (default_model_path() / "config.json").is_file(), reason="shipped model not trained yet")
def test_shipped_model_tags_an_invented_session():
    clf = MarkerClassifier.load(device="cpu")
    session = clf(invented_session())
    assert len(session.utterances) == 6
    for u in session.utterances:
        assert set(u.probabilities) == set(LABELS)
        assert all(0.0 <= v <= 1.0 for v in u.probabilities.values())
        assert set(u.markers) <= set(LABELS)
    # batch size does not change results (length-sorted batches are scattered back in order)
    small = MarkerClassifier.load(device="cpu", batch_size=2).predict_proba([invented_session()])[0]
    np.testing.assert_allclose(small, clf.predict_proba([invented_session()])[0], atol=1e-4)


def test_context_layer_in_chunks_equals_the_whole_session():
    """Long sessions run in overlapping chunks (memory linear in length) with the very same outputs."""
    import torch

    from alliance_nlp.model import ContextLayer

    torch.manual_seed(0)
    for layers, window, lookahead in ((1, 8, 0), (2, 4, 2)):
        m = ContextLayer(16, dim=32, ffn=64, layers=layers, window=window, lookahead=lookahead).eval()
        with torch.no_grad():
            m.rel.normal_()
        x, r = torch.randn(1, 700, 16), torch.randint(0, 3, (1, 700))
        with torch.inference_mode():
            assert torch.allclose(m(x, r), m.forward_chunked(x, r, chunk=64), atol=1e-5)


def test_schedule_counts_the_steps_packing_makes():
    """The LR schedule must span the steps training takes: chunks seldom fill a step exactly, so packed
    steps outnumber utterances / utterances_per_step (the v2 recipe's schedule ended ~14% early)."""
    from training.classifier import make_chunks, pack_steps, steps_per_epoch

    spans = [(0, 0, 32), (0, 32, 64), (1, 0, 40), (2, 0, 100), (3, 0, 5)]
    assert pack_steps(spans, 96) == [[(0, 0, 32), (0, 32, 64)], [(1, 0, 40)], [(2, 0, 100)], [(3, 0, 5)]]
    lengths = [37, 80, 5, 64, 120, 33, 9]
    cfg = TrainConfig(chunk_utterances=32, utterances_per_step=96)
    steps = pack_steps(make_chunks(lengths, 32, random.Random(0)), 96)
    assert sorted(u for g in steps for u in g) == sorted(make_chunks(lengths, 32, random.Random(0)))
    assert all(sum(b - a for _, a, b in g) <= 96 or len(g) == 1 for g in steps)
    assert steps_per_epoch(lengths, cfg) > -(-sum(lengths) // 96)


def test_compressing_a_full_rank_adapter_keeps_the_model_up_to_the_dropped_rank(tmp_path, tiny_base):
    """training.compress_adapter: at the changes' full rank the compressed model is the same model; at a
    lower rank it is the best approximation, with its error recorded."""
    from training import compress_adapter

    full = tmp_path / "full"
    clf = train(tiny_config(tiny_base, finetune="full", lr_encoder=1e-2), tiny_rows(), full)
    session = invented_session()
    ref = clf.predict_proba([session])[0]
    compress_adapter.main(["--model", str(full), "--rank", "32", "--output", str(tmp_path / "r32")])
    same = MarkerClassifier.load(tmp_path / "r32", device="cpu").predict_proba([session])[0]
    np.testing.assert_allclose(ref, same, atol=1e-5)
    compress_adapter.main(["--model", str(full), "--rank", "1", "--output", str(tmp_path / "r1")])
    cfg = json.loads((tmp_path / "r1" / "config.json").read_text())
    assert cfg["lora"]["r"] == 1 and 0 < cfg["training"]["compressed"]["relative_frobenius_error"]["max"] < 1
    MarkerClassifier.load(tmp_path / "r1", device="cpu").predict_proba([session])


def test_a_stopped_training_run_resumes_to_the_same_weights(tmp_path, tiny_base):
    """A run stopped mid-epoch and started again from its checkpoint ends with exactly the weights,
    calibration and log of an uninterrupted run (hours-long CPU runs survive a stop)."""
    from safetensors.torch import load_file

    from training.classifier import read_checkpoint

    rows = tiny_rows()
    table = {("toy", r["session"], r["position"]): ("annomi_behaviour", r["position"] % 4) for r in rows}
    cfg = dict(max_steps=None, epochs=2, utterances_per_step=3, chunk_utterances=3, aux_weight=0.5, role_dropout=0.5)

    whole_log = []
    train(tiny_config(tiny_base, **cfg), rows, tmp_path / "whole", log=whole_log.append, aux_table=table)

    class Stop(Exception):
        pass

    def stop_at_10(rec):
        if rec.get("event") == "step" and rec["step"] == 10:
            raise Stop

    ckpt = tmp_path / "run.checkpoint"
    with pytest.raises(Stop):
        train(
            tiny_config(tiny_base, **cfg),
            rows,
            tmp_path / "run",
            log=stop_at_10,
            aux_table=table,
            checkpoint=ckpt,
            checkpoint_every_s=0,
        )
    state = read_checkpoint(ckpt, tiny_config(tiny_base, **cfg))
    assert state["step"] == 10 and state["next_step_in_epoch"] > 0  # stopped inside an epoch
    with pytest.raises(ValueError, match="another training config.*seed"):
        read_checkpoint(ckpt, tiny_config(tiny_base, **cfg, seed=14))

    resumed_log = []
    train(
        tiny_config(tiny_base, **cfg),
        rows,
        tmp_path / "run",
        log=resumed_log.append,
        aux_table=table,
        checkpoint=ckpt,
        checkpoint_every_s=0,
    )
    assert not ckpt.exists()  # removed once the model folder is written
    assert [r["step"] for r in resumed_log if r["event"] == "resumed"] == [10]
    for f in ("context.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(tmp_path / "whole" / f)), load_file(str(tmp_path / "run" / f))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
    cal = [json.loads((tmp_path / d / "config.json").read_text())["calibration"] for d in ("whole", "run")]
    assert cal[0] == cal[1]
    epochs = [[r["val_macro_auprc"] for r in log if r["event"] == "epoch"] for log in (whole_log, resumed_log)]
    assert epochs[0] == epochs[1]
