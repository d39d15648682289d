"""The utterance encoder on ONNX Runtime: the classifier's fast CPU path, with no torch at run time.

The base BERT encoder (all-MiniLM-L6-v2) with the model's LoRA adapter merged in is written as an ONNX
graph in memory from the safetensors files (numpy only), and run by ONNX Runtime. Nothing is exported
with torch and nothing is cached on disk: the graph is rebuilt at each load, from the same verified
files the torch path reads.

Inputs are grouped by exact token length, so a batch has no padding and needs no attention mask:
every matrix product is done on real tokens only, and an utterance's vector depends on its own tokens
alone (not on which other utterances, or sessions, shared its batch). This is what lets a parallel or
cluster run give the same numbers as a sequential one.

Precisions: `fp32` (the reference), `int8` (dynamic quantization: weights int8 per output column in a
7-bit range, activations quantized per call, `com.microsoft.DynamicQuantizeMatMul`; the feed-forward
output projection, whose input after GELU has the widest range, stays fp32). Whether a reduced precision
is offered for a model is decided by a measured gate (`alliance_nlp.precision`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

OPSET = 17
MAX_TOKENS = 8192  # tokens per ONNX Runtime call (bounds the FFN and attention buffers)
SUPPORTED = {"bert"}  # model_type values this graph builder implements


def supports(base_dir: str | os.PathLike) -> bool:
    """True when the base model folder holds a BERT-style encoder this module can build."""
    try:
        cfg = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        cfg.get("model_type") in SUPPORTED
        and cfg.get("hidden_act", "gelu") == "gelu"
        and cfg.get("position_embedding_type", "absolute") == "absolute"
        and (Path(base_dir) / "tokenizer.json").is_file()
        and (Path(base_dir) / "model.safetensors").is_file()
    )


def merged_weights(
    base_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None, sha256: str | None = None
) -> dict[str, np.ndarray]:
    """Base weights (their file checked against `sha256` when given) with the LoRA adapter added in
    (W += alpha / r * B @ A), as the torch path does."""
    from safetensors.numpy import load_file

    from .context_numpy import single_threaded_blas

    w = {k.removeprefix("bert."): v for k, v in read_safetensors(Path(base_dir) / "model.safetensors", sha256).items()}
    if adapter_dir is None:
        return w
    adapter_dir = Path(adapter_dir)
    cfg_file, weights = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    try:
        acfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error type for damaged files
        raise ModelError(f"{adapter_dir}: unreadable LoRA adapter ({str(exc).splitlines()[0]})") from None
    if acfg.get("peft_type") != "LORA" or acfg.get("use_dora") or acfg.get("use_rslora") or acfg.get("fan_in_fan_out"):
        raise ModelError(f"{cfg_file}: only plain LoRA adapters are supported")
    scaling = float(acfg["lora_alpha"]) / float(acfg["r"])
    merged = 0
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        name = key[: -len(".lora_A.weight")].removeprefix("base_model.model.") + ".weight"
        b = tensors.get(key.replace(".lora_A.", ".lora_B."))
        target = w.get(name)
        if b is None or target is None or target.shape != (b.shape[0], a.shape[1]):
            raise ModelError(f"{weights}: adapter weight {key} does not match the base model")
        with single_threaded_blas():  # OpenBLAS's last bits depend on its thread count
            delta = b.astype(np.float32) @ a.astype(np.float32)
        w[name] = (target + np.float32(scaling) * delta).astype(np.float32)
        merged += 1
    if not merged:
        raise ModelError(f"{weights}: the adapter holds no LoRA weights")
    return w


def quantize_columns(w: np.ndarray, bits: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(K, N) float weights -> int8 weights and one symmetric scale per output column.

    7 bits by default ("reduce range"): with uint8 activations, CPUs without VNNI multiply-add pairs
    of products in 16 bits, which 8-bit weights can overflow."""
    top = 2 ** (bits - 1) - 1
    scale = np.abs(w).max(axis=0) / top
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -top, top).astype(np.int8)
    return q, scale


def read_safetensors(path: str | os.PathLike, sha256: str | None = None) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as numpy views of one buffer (read in one go: much faster than
    paging in a memory map). `sha256`: the file's expected hash, checked on the same bytes."""
    dtypes = {
        "F32": np.float32,
        "F16": np.float16,
        "F64": np.float64,
        "I64": np.int64,
        "I32": np.int32,
        "I8": np.int8,
        "U8": np.uint8,
        "BOOL": np.bool_,
    }
    try:
        with open(path, "rb") as fh:
            buf = bytearray(os.fstat(fh.fileno()).st_size)
            fh.readinto(buf)
    except OSError as exc:
        raise ModelError(f"{path}: unreadable ({exc.strerror})") from None
    if sha256 is not None:
        import hashlib

        from .errors import IntegrityError

        got = hashlib.sha256(buf).hexdigest()
        if got != sha256.lower():
            raise IntegrityError(
                f"{path}: SHA-256 mismatch: expected {sha256}, got {got}. The file is not the "
                "pinned model; reinstall the package that provides it (or pass the matching "
                "sha256 for a model you trust)."
            )
    try:
        n = int.from_bytes(buf[:8], "little")
        if not 0 < n <= len(buf) - 8:
            raise ValueError("not a safetensors file")
        header = json.loads(bytes(buf[8 : 8 + n]))
        data = memoryview(buf)[8 + n :]
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            a, b = info["data_offsets"]
            out[name] = np.frombuffer(data[a:b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        return out
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable safetensors file ({exc})") from None


def build_model(
    w: dict[str, np.ndarray],
    cfg: dict[str, Any],
    precision: str = "fp32",
    keep_fp32: Sequence[str] = ("ff2",),
    bits: int = 7,
) -> tuple[Any, dict[str, np.ndarray]]:
    """The encoder as an ONNX ModelProto (input_ids (B, L) int64, all of one length -> mean-pooled
    (B, H)) and its large weights, which stay numpy arrays handed to ONNX Runtime by name (external
    initializers): no copy into a protobuf and out again."""
    from onnx import TensorProto, helper, numpy_helper

    H, heads, n_layers = int(cfg["hidden_size"]), int(cfg["num_attention_heads"]), int(cfg["num_hidden_layers"])
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    d = H // heads
    nodes: list[Any] = []
    inits: list[Any] = []
    external: dict[str, np.ndarray] = {}

    def const(name: str, arr: np.ndarray) -> str:
        arr = np.require(arr, requirements="C")  # (keeps 0-d scalars 0-d)
        if arr.size < 4096:
            inits.append(numpy_helper.from_array(arr, name))
            return name
        t = TensorProto(
            name=name,
            data_type=helper.np_dtype_to_tensor_dtype(arr.dtype),
            dims=arr.shape,
            data_location=TensorProto.EXTERNAL,
        )
        t.external_data.add(key="location", value=name)
        inits.append(t)
        external[name] = arr
        return name

    def node(op: str, inputs: list[str], out: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def linear(x: str, prefix: str, out: str, scale: float | None = None) -> str:
        W = w[f"{prefix}.weight"].T.astype(np.float32)  # (in, out)
        b = w[f"{prefix}.bias"].astype(np.float32)
        if scale is not None:
            W, b = W * np.float32(scale), b * np.float32(scale)
        return matmul_bias(x, W, b, out)

    def matmul_bias(x: str, W: np.ndarray, b: np.ndarray, out: str) -> str:
        if precision == "int8" and out.rsplit(".", 1)[-1] not in keep_fp32:
            q, s = quantize_columns(W, bits)
            return node(
                "DynamicQuantizeMatMul",
                [
                    x,
                    const(f"{out}.wq", q),
                    const(f"{out}.ws", s),
                    const(f"{out}.wz", np.zeros_like(q[0])),
                    const(f"{out}.b", b),
                ],
                out,
                domain="com.microsoft",
            )
        return node("Add", [node("MatMul", [x, const(f"{out}.w", W)], f"{out}.mm"), const(f"{out}.b", b)], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node(
            "LayerNormalization",
            [x, const(f"{prefix}.g", w[f"{prefix}.weight"]), const(f"{prefix}.beta", w[f"{prefix}.bias"])],
            out,
            axis=-1,
            epsilon=eps,
        )

    # embeddings: word + position + token type 0 (type ids are all 0 for single sentences)
    pos_type = (w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]).astype(
        np.float32
    )
    emb = node("Gather", [const("word_emb", w["embeddings.word_embeddings.weight"]), "input_ids"], "emb")
    shape = node("Shape", ["input_ids"], "ids_shape")
    length = node("Slice", [shape, const("one", np.array([1], np.int64)), const("two", np.array([2], np.int64))], "L")
    pos = node("Slice", [const("pos_type", pos_type), const("zero", np.array([0], np.int64)), length, "zero"], "pos")
    x = layer_norm(node("Add", [emb, pos], "emb_pos"), "embeddings.LayerNorm", "h0")
    qkv_shape = const("qkv_shape", np.array([0, 0, 3, heads, d], np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, H], np.int64))
    for i in range(n_layers):
        p = f"encoder.layer.{i}"
        # one product for Q, K and V; the 1/sqrt(d) of the scores is folded into Q
        Wq = w[f"{p}.attention.self.query.weight"].T * np.float32(1 / np.sqrt(d))
        bq = w[f"{p}.attention.self.query.bias"] * np.float32(1 / np.sqrt(d))
        Wqkv = np.concatenate(
            [Wq, w[f"{p}.attention.self.key.weight"].T, w[f"{p}.attention.self.value.weight"].T], axis=1
        ).astype(np.float32)
        bqkv = np.concatenate([bq, w[f"{p}.attention.self.key.bias"], w[f"{p}.attention.self.value.bias"]]).astype(
            np.float32
        )
        qkv = matmul_bias(x, Wqkv, bqkv, f"l{i}.qkv")
        qkv = node("Transpose", [node("Reshape", [qkv, qkv_shape], f"l{i}.qkv5")], f"l{i}.qkvT", perm=[2, 0, 3, 1, 4])
        q, k, v = (
            node("Gather", [qkv, const(f"l{i}.i{j}", np.array(j, np.int64))], f"l{i}.{n}", axis=0)
            for j, n in enumerate("qkv")
        )
        scores = node("MatMul", [q, node("Transpose", [k], f"l{i}.kT", perm=[0, 1, 3, 2])], f"l{i}.scores")
        ctx = node("MatMul", [node("Softmax", [scores], f"l{i}.probs", axis=-1), v], f"l{i}.ctx")
        ctx = node("Reshape", [node("Transpose", [ctx], f"l{i}.ctxT", perm=[0, 2, 1, 3]), merge_shape], f"l{i}.ctxm")
        att = linear(ctx, f"{p}.attention.output.dense", f"l{i}.att")
        x = layer_norm(node("Add", [att, x], f"l{i}.res1"), f"{p}.attention.output.LayerNorm", f"l{i}.h1")
        ff = node("Gelu", [linear(x, f"{p}.intermediate.dense", f"l{i}.ff1")], f"l{i}.gelu", domain="com.microsoft")
        ff = linear(ff, f"{p}.output.dense", f"l{i}.ff2")
        x = layer_norm(node("Add", [ff, x], f"l{i}.res2"), f"{p}.output.LayerNorm", f"l{i}.h2")
    node("ReduceMean", [x], "vectors", axes=[1], keepdims=0)  # mean pooling: no padding to mask
    graph = helper.make_graph(
        nodes,
        "alliance-encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["batch", H])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="alliance-nlp",
    )
    return model, external


class OnnxEncoder:
    """Mean-pooled utterance vectors from token ids, with ONNX Runtime on the CPU."""

    def __init__(
        self,
        base_dir: str | os.PathLike,
        adapter_dir: str | os.PathLike | None,
        precision: str = "fp32",
        threads: int | None = None,
        max_length: int = 128,
        sha256: str | None = None,
    ):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if precision not in ("fp32", "int8"):
            raise ModelError(f"the ONNX encoder runs fp32 or int8, not {precision!r}")
        base_dir = Path(base_dir)
        cfg = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
        self.hidden_size = int(cfg["hidden_size"])
        self.precision = precision
        model, external = build_model(merged_weights(base_dir, adapter_dir, sha256), cfg, precision)
        opts = ort.SessionOptions()
        self._weights = [ort.OrtValue.ortvalue_from_numpy(a) for a in external.values()]  # kept alive
        opts.add_external_initializers(list(external), self._weights)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # intra-op threads (results do not depend on their number; see encode_ids)
        self.threads = max(1, int(threads or os.environ.get("ALLIANCE_NLP_THREADS") or _cores()))
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length)
        self.tokenizer = tok
        self.max_length = max_length

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode_ids(self, ids: Sequence[Sequence[int]], max_tokens: int = MAX_TOKENS) -> np.ndarray:
        """(n, hidden) float32 vectors in input order; inputs of one length share a call, without padding
        (an utterance's vector depends on its own tokens only, whatever else is in the batch, and not on
        the thread count)."""
        out = np.zeros((len(ids), self.hidden_size), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, x in enumerate(ids):
            groups.setdefault(len(x), []).append(i)
        jobs: list[tuple[list[int], np.ndarray]] = []
        for length in sorted(groups, reverse=True):
            idx = groups[length]
            step = max(2, max_tokens // max(length, 1))
            for a in range(0, len(idx), step):
                part = idx[a : a + step]
                # a batch of one takes another reduction path in ONNX Runtime (last-bit differences):
                # run it twice over, so that every vector is computed the same way
                rows = part * 2 if len(part) == 1 else part
                jobs.append((part, np.array([ids[i] for i in rows], dtype=np.int64).reshape(len(rows), length)))
        for part, batch in jobs:
            out[part] = self.session.run(None, {"input_ids": batch})[0][: len(part)]
        return out


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
