"""Compress a model folder's encoder adapter to a lower rank by truncated SVD of each weight change.

    python -m training.compress_adapter --model DIR --rank 64 --output DIR2

A fully fine-tuned model (`finetune: full`) stores its weight changes at full rank (about 64 MB for
MiniLM-L6); the best rank-k approximation of each change (Eckart-Young: B = U_k S_k, A = V_k^T) is an
ordinary LoRA adapter of rank k. The context layer and config are copied; thresholds stay as they are
(set them again with `evaluation.threshold_transfer --write`). The relative Frobenius error of each
change is recorded in the output's config, under `training.compressed`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np


def compress(tensors: dict[str, np.ndarray], rank: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Rank-`rank` LoRA factors of every change B @ A in `tensors` (peft layout), and each change's
    relative Frobenius error."""
    out: dict[str, np.ndarray] = {}
    errors: dict[str, float] = {}
    for key in sorted(k for k in tensors if k.endswith(".lora_A.weight")):
        name = key[: -len(".lora_A.weight")]
        delta = tensors[f"{name}.lora_B.weight"].astype(np.float64) @ tensors[key].astype(np.float64)
        u, s, vt = np.linalg.svd(delta, full_matrices=False)
        k = min(rank, len(s))
        out[f"{name}.lora_B.weight"] = (u[:, :k] * s[:k]).astype(np.float32)
        out[f"{name}.lora_A.weight"] = vt[:k].astype(np.float32)
        total = float(np.sqrt((s**2).sum()))
        errors[name.removeprefix("base_model.model.")] = float(np.sqrt((s[k:] ** 2).sum())) / total if total else 0.0
    return out, errors


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model folder whose adapter to compress")
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--output", required=True, help="model folder to write")
    args = ap.parse_args(argv)
    from safetensors.numpy import load_file, save_file

    from alliance_nlp.integrity import write_manifest

    src, dst = Path(args.model), Path(args.output)
    if args.rank < 1:
        ap.error("--rank must be at least 1")
    acfg = json.loads((src / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    scaling = float(acfg["lora_alpha"]) / float(acfg["r"])
    tensors = load_file(str(src / "adapter" / "adapter_model.safetensors"))
    if scaling != 1.0:  # fold the scaling into B so the written adapter has scaling 1
        tensors = {k: v * np.float32(scaling) if ".lora_B." in k else v for k, v in tensors.items()}
    factors, errors = compress(tensors, args.rank)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "adapter").mkdir(exist_ok=True)
    save_file(factors, str(dst / "adapter" / "adapter_model.safetensors"))
    (dst / "adapter" / "adapter_config.json").write_text(
        json.dumps({**acfg, "r": args.rank, "lora_alpha": args.rank}, indent=1) + "\n", encoding="utf-8"
    )
    for f in ("context.safetensors", "train_log.jsonl"):
        if (src / f).is_file():
            shutil.copy2(src / f, dst / f)
    cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
    cfg["name"] = dst.name
    cfg["lora"] = {**cfg.get("lora", {}), "r": args.rank, "lora_alpha": args.rank}
    cfg.setdefault("training", {})["compressed"] = {
        "from": str(src),
        "rank": args.rank,
        "relative_frobenius_error": {"max": max(errors.values()), "mean": float(np.mean(list(errors.values())))},
        "per_module": errors,
    }
    (dst / "config.json").write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
    write_manifest(dst)
    print(
        f"{dst}: rank {args.rank}, relative error of the changes max {max(errors.values()):.3f}, "
        f"mean {np.mean(list(errors.values())):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
