"""Collect the classifier ablations into evaluation/results/ablations.json (shown in the model card).

    python -m evaluation.ablations

Two kinds of rows, both on release v2.0's fixed test split, thresholds chosen on validation:
- **product**: trained model folders run through the pipeline `analyze` runs
  (`evaluation.eval_classifier`, results in evaluation/results/classifier_*.json);
- **fixed encoder**: `training.head_sweep` variants, where the encoder is frozen and only the context
  layer and head are trained (minutes instead of an hour per run on 2 CPU cores). They rank options
  above the encoder against each other; their absolute level is below a fine-tuned encoder's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alliance_nlp.files import write_json_atomic
from alliance_nlp.labels import LABELS
from evaluation.repair_structure import MIN_VAL_GAIN, chosen_gate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "evaluation" / "results"

# (result file, name, what changes) for runs through the product
PRODUCT_ROWS = [
    ("classifier.json", "shipped", "LoRA (all six layers, r 16), context 8 back / 2 ahead, auxiliary targets; records"),
    (
        "classifier_v2_full_finetune.json",
        "full fine-tuning",
        "every query, key, value and dense weight of the six layers trained at full rank (lr 5e-5; biases, "
        "LayerNorms, embeddings frozen) instead of LoRA, otherwise the shipped recipe; thresholds by the same rule",
    ),
    (
        "classifier_v2_4_epochs.json",
        "4 epochs",
        "the shipped recipe trained for 4 epochs instead of 3 (warm-up and linear decay stretched to match); "
        "thresholds by the same rule",
    ),
    (
        "classifier_v2_0.5.json",
        "0.5.0 model",
        "LoRA in layers 3-5 only, r 8, trained before the schedule fix; thresholds by the same rule. The rows "
        "below were trained with this recipe, so compare them with this row",
    ),
    (
        "classifier_v2_thresholds_0.4.json",
        "0.5.0 model, 0.4.0 thresholds",
        "the 0.5.0 model with the max-F1 cuts of the training loop's validation predictions; the rows below "
        "used such thresholds too",
    ),
    ("classifier_candidate_v2_release2.json", "no auxiliary targets", "0.4.0 recipe without the corpora's annotations"),
    (
        "classifier_unit_sentences.json",
        "unit: sentences",
        "0.5.0 model, every sentence its own unit, max back to the record",
    ),
    (
        "classifier_unit_records.json",
        "unit: whole records",
        "0.5.0 model, no record cut; the encoder truncates at 128 tokens",
    ),
]
SWEEP_WHAT = {
    "default": "context 8 back / 2 ahead, no auxiliary targets",
    "aux": "+ all auxiliary targets (weight 0.5)",
    "aux_behaviour": "+ AnnoMI therapist behaviour and client talk type only",
    "aux_strategy": "+ ESConv supporter strategy only",
    "causal": "context 8 back, none ahead",
    "no_context": "no context (each utterance alone)",
    "wide": "context 16 back / 4 ahead",
    "aux_wide": "context 16 back / 4 ahead + auxiliary targets",
    "two_layers": "two context layers",
    "pair": "+ each utterance also read as a sentence pair after the other speaker's latest utterance (the bid "
    "it answers), pooled over its own tokens; that vector concatenated to the plain one",
}


def product_row(path: Path, name: str, what: str) -> dict | None:
    if not path.is_file():
        return None
    r = json.loads(path.read_text(encoding="utf-8"))
    c = r["results"]["classifier"]
    best = [c["labels"][l].get("f1_best") for l in LABELS]  # absent in results from before 0.4
    return {
        "name": name,
        "kind": "product",
        "what": what,
        "macro_f1": c["macro_f1"],
        "macro_f1_oracle": None if None in best else sum(best) / len(best),
        "macro_auprc": c["macro_auprc"],
        # the training loop's validation figure (coded records, before the pipeline): provenance only
        "training_val_macro_auprc": r.get("model_config", {}).get("validation", {}).get("macro_auprc"),
        "f1": {l: c["labels"][l]["f1"] for l in LABELS},
        "source": path.name,
    }


ENCODER_NAMES = {
    "base": "MiniLM-L6",
    "ft-MiniLM": "shipped fine-tuned MiniLM-L6",
    "ft-MiniLM+mpnet": "shipped fine-tuned MiniLM-L6 + all-mpnet-base-v2",
}
# encoders built on a trained model folder: kept out of the note that compares base encoders
ON_SHIPPED = (ENCODER_NAMES["ft-MiniLM"], ENCODER_NAMES["ft-MiniLM+mpnet"])


def sweep_rows(sweep: dict) -> list[dict]:
    """One row per (encoder, variant): the mean over its seeds, with their spread, so a difference can
    be read against seed noise."""
    groups: dict[tuple[str, str], list[tuple[str, dict]]] = {}
    for key, v in sweep.items():
        encoder, variant, seed = key.split("|")
        groups.setdefault((encoder, variant), []).append((seed, v))
    rows = []
    for (encoder, variant), runs in groups.items():
        vs = [v for _, v in runs]

        def mean(get, vs=vs):
            return float(np.mean([get(v) for v in vs]))

        rows.append(
            {
                "name": f"fixed {ENCODER_NAMES.get(encoder, encoder)}: {variant}",
                "kind": "fixed encoder",
                "encoder": ENCODER_NAMES.get(encoder, encoder),
                "variant": variant,
                "what": SWEEP_WHAT.get(variant, variant),
                "seeds": len(vs),
                "macro_f1": mean(lambda v: v["macro_f1"]),
                "macro_f1_sd": float(np.std([v["macro_f1"] for v in vs], ddof=1)) if len(vs) > 1 else None,
                "macro_f1_oracle": mean(lambda v: v["macro_f1_oracle"]),
                "macro_auprc": mean(lambda v: v["macro_auprc"]),
                "val_macro_auprc": mean(lambda v: v["val_macro_auprc"])
                if all("val_macro_auprc" in v for v in vs)
                else None,
                "f1": {l: mean(lambda v, l=l: v["f1"][l]) for l in LABELS},
                "source": "head_sweep.json " + ", ".join(f"{encoder}|{variant}|{s}" for s, _ in runs),
            }
        )
    return rows


def main() -> int:
    rows = [r for f, n, w in PRODUCT_ROWS if (r := product_row(RESULTS / f, n, w))]
    sweep_file = RESULTS / "head_sweep.json"
    notes = []
    if sweep_file.is_file():
        sweep = json.loads(sweep_file.read_text(encoding="utf-8"))
        rows += sweep_rows(sweep)
        base = sweep.get("base|default|13", {}).get("repair_structure")
        if base:
            g0, g1 = base["gate_0.0"], base["gate_1.0"]
            notes.append(
                "Repair structure (fixed encoder, default variant): test repair F1 "
                f"{g0['f1']:.3f} (AUPRC {g0['auprc']:.3f}) from the repair score alone, {g1['f1']:.3f} "
                f"(AUPRC {g1['auprc']:.3f}) with it multiplied by the highest rupture probability of the 4 "
                f"utterances before; {base['gold_repairs_after_gold_rupture']:.0%} of the test repairs follow a "
                "coded rupture within 4 utterances (the rest follow strain not coded as a rupture, or one "
                "further back)."
            )
        defaults = [r for r in rows if r.get("variant") == "default" and r.get("encoder") not in ON_SHIPPED]
        if len(defaults) > 1:
            notes.append(
                "Base encoders, frozen, default variant (mean over seeds): "
                + "; ".join(
                    f"{r['encoder']} ({r['seeds']} seeds) test macro-F1 {r['macro_f1']:.3f}, test macro-AUPRC "
                    f"{r['macro_auprc']:.3f}, validation macro-AUPRC {r['val_macro_auprc']:.3f}"
                    for r in defaults
                )
                + "."
            )
    stacked = {r["encoder"]: r for r in rows if r.get("variant") == "default" and r.get("encoder") in ON_SHIPPED}
    ft, both = stacked.get(ENCODER_NAMES["ft-MiniLM"]), stacked.get(ENCODER_NAMES["ft-MiniLM+mpnet"])
    if ft and both:
        notes.append(
            "A stronger encoder on top of the shipped one (`training.head_sweep --encoder "
            "models/alliance-markers-v2+MPNET@SHA256`): the shipped model's fine-tuned encoder, frozen, with a new "
            f"context layer and head, reaches validation macro-AUPRC {ft['val_macro_auprc']:.3f}, test macro-F1 "
            f"{ft['macro_f1']:.3f}, test macro-AUPRC {ft['macro_auprc']:.3f} ({ft['seeds']} seeds); with frozen "
            f"all-mpnet-base-v2 vectors concatenated, {both['val_macro_auprc']:.3f}, {both['macro_f1']:.3f}, "
            f"{both['macro_auprc']:.3f} ({both['seeds']} seeds; validation difference "
            f"{both['val_macro_auprc'] - ft['val_macro_auprc']:+.3f}), for about 5 times the encoding cost."
        )
    be_file = RESULTS / "bench_encoders.json"
    if be_file.is_file():
        be = json.loads(be_file.read_text(encoding="utf-8"))
        ups = ", ".join(f"{k} {v} utterances/s" for k, v in be["utterances_per_s"].items())
        params = ", ".join(f"{k} {v} M" for k, v in be["parameters_millions"].items())
        notes.append(
            f"Cost of the stronger encoder (`python -m evaluation.bench_encoders`, encoding only, {be['cpu']}, "
            f"{be['threads']} threads, {be['utterances']} test utterances, {be['rounds']} interleaved rounds): "
            f"{ups}; {be['cost_ratio']} times the encoding time ({params} parameters)."
        )
    rs_file = RESULTS / "repair_structure.json"
    if rs_file.is_file():
        rs = json.loads(rs_file.read_text(encoding="utf-8"))
        g0, g5, g1 = rs["gate_0.0"], rs["gate_0.5"], rs["gate_1.0"]
        picked = chosen_gate(rs)
        notes.append(
            f"Repair structure on the shipped model ({rs['model']}, through the pipeline; "
            "`python -m evaluation.repair_structure`): test repair F1 "
            f"{g0['f1']:.3f} (AUPRC {g0['auprc']:.3f}) from the repair score alone, {g5['f1']:.3f} "
            f"(AUPRC {g5['auprc']:.3f}) times the square root of the highest rupture probability of the "
            f"{rs['k']} records before, {g1['f1']:.3f} (AUPRC {g1['auprc']:.3f}) times that probability "
            "(each threshold chosen on validation, max-F1 cut). Validation repair AUPRC, which picks the form "
            f"(a gate must add at least {MIN_VAL_GAIN}): {g0['val_auprc']:.3f}, {g5['val_auprc']:.3f}, "
            f"{g1['val_auprc']:.3f}, so validation picks "
            + ("no gate and none ships." if picked == "gate_0.0" else f"{picked} (the product has no gate yet).")
        )
    out = {
        "protocol": "Release v2.0 fixed test split (180 sessions, 7,161 utterances); thresholds and "
        "calibration chosen on validation. 'product' rows: trained models through the `analyze` pipeline. "
        "'fixed' rows: a frozen encoder (all-MiniLM-L6-v2, or the one named), only the context layer and head "
        "trained (`python -m training.head_sweep`); the mean over the seeds stated, with their standard "
        "deviation; they compare options with each other, below a fine-tuned encoder's level.",
        "rows": rows,
        "notes": notes,
    }
    write_json_atomic(RESULTS / "ablations.json", out)
    print(json.dumps([(r["name"], round(r["macro_f1"], 3)) for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
