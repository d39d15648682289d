"""The corpora's own annotations as auxiliary training targets (multi-task supervision).

AnnoMI codes every therapist utterance with a main behaviour (reflection, question, therapist input,
other) and every client utterance with a talk type (change, neutral, sustain); ESConv labels every
supporter turn with one of eight strategies. Each group is one categorical target, absent (masked)
where the corpus or the speaker does not carry it. These are never shipped labels: they only shape
the representation the six alliance markers are read from.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from training.corpora import resolve_corpus_dir

GROUPS: dict[str, tuple[str, ...]] = {
    "annomi_behaviour": ("reflection", "question", "therapist_input", "other"),
    "annomi_talk": ("change", "neutral", "sustain"),
    "esconv_strategy": (
        "Question",
        "Restatement or Paraphrasing",
        "Reflection of feelings",
        "Self-disclosure",
        "Affirmation and Reassurance",
        "Providing Suggestions",
        "Information",
        "Others",
    ),
}
N_AUX = sum(len(v) for v in GROUPS.values())
OFFSETS = dict(zip(GROUPS, np.cumsum([0] + [len(v) for v in GROUPS.values()])[:-1].tolist()))


def read_auxiliary(corpus_dir: str | os.PathLike | None = None) -> dict[tuple[str, str, int], tuple[str, int]]:
    """(corpus, session, utterance) -> (group, class index) for every utterance that has one."""
    root = resolve_corpus_dir(corpus_dir)
    out: dict[tuple[str, str, int], tuple[str, int]] = {}
    with open(root / "annomi" / "AnnoMI-simple.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key = ("annomi", row["transcript_id"], int(row["utterance_id"]))
            for group, col in (("annomi_behaviour", "main_therapist_behaviour"), ("annomi_talk", "client_talk_type")):
                if row[col] in GROUPS[group]:
                    out[key] = (group, GROUPS[group].index(row[col]))
    strategies = GROUPS["esconv_strategy"]
    for split in ("train", "valid"):
        with open(root / "esconv" / f"{split}.json", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                for j, turn in enumerate(json.loads(line)["dialog"]):
                    s = turn.get("strategy")
                    if s in strategies:
                        out[("esconv", f"{split}:{i}", j)] = ("esconv_strategy", strategies.index(s))
    return out


def aux_targets(keys: list[tuple[str, str, int]], table: dict) -> np.ndarray:
    """(n, len(GROUPS)) class index per group, -1 where the group does not apply."""
    y = np.full((len(keys), len(GROUPS)), -1, dtype=np.int64)
    names = list(GROUPS)
    for i, k in enumerate(keys):
        hit = table.get(k)
        if hit is not None:
            y[i, names.index(hit[0])] = hit[1]
    return y
