"""Join our standoff labels with corpus text into session-grouped train/validation/test splits.

    from training.dataset import build_dataset
    dd = build_dataset()            # datasets.DatasetDict: train / validation / test

Rows are utterances in session order with the speaker role, the preceding turns as context, and a
multi-hot `labels` vector in `LABELS` order. Splits are by group (AnnoMI: video, since several
transcripts share a video; ESConv: conversation), within each corpus, with a fixed seed, so no session
or video is in two splits.
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from pathlib import Path

from alliance_nlp.labels import LABELS
from training.annotations import RELEASE_NAME, ROOT
from training.corpora import read_corpus

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
DEFAULT_SEED = 13


def model_release(model_config: dict) -> Path:
    """The annotation release a classifier was trained on (recorded in its config.json) when that file
    is here, else the current release: evaluating a model on another release's splits would leak."""
    name = model_config.get("training", {}).get("data", {}).get("release")
    found = sorted(ROOT.rglob(Path(name).name)) if name else []  # v1.x in data/annotations, v2.x in v2/
    return found[0] if found else ROOT / RELEASE_NAME


def release_splits(path: str | os.PathLike) -> dict[tuple[str, str], str] | None:
    """The fixed split of every session of a release whose manifest records them (release v2.0 on:
    its test set never changes; new sessions join train/validation only); None for older releases,
    whose splits are dealt by `assign_splits`."""
    manifest = Path(path).parent / "manifest.json"
    if not manifest.is_file():
        return None
    m = json.loads(manifest.read_text(encoding="utf-8"))
    if m.get("release") != Path(path).name or "splits" not in m:
        return None
    return {tuple(k.split(" ", 1)): v for k, v in m["splits"].items()}  # type: ignore[misc]


def load_annotations(path: str | os.PathLike | None = None) -> list[dict]:
    path = Path(path) if path else ROOT / RELEASE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation release not found (run `python -m training.annotations build`)")
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def assign_splits(
    groups: dict[str, int], seed: int = DEFAULT_SEED, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> dict[str, str]:
    """Greedy, seeded assignment of whole groups to splits to match utterance fractions."""
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    total = sum(groups.values()) or 1
    filled = {s: 0 for s in SPLITS}
    out = {}
    for g in order:
        # the split furthest below its target share takes the group
        split = max(SPLITS, key=lambda s: fractions[SPLITS.index(s)] - filled[s] / total)
        out[g] = split
        filled[split] += groups[g]
    return out


def build_rows(
    annotations: list[dict],
    corpus_dir: str | None = None,
    context_turns: int = 4,
    seed: int = DEFAULT_SEED,
    splits: dict[tuple[str, str], str] | None = None,
) -> list[dict]:
    """One row per coded utterance; `splits` (a release's fixed splits, see `release_splits`) when
    given, else groups dealt to splits by `assign_splits`."""
    by_session: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for r in annotations:
        by_session[(r["corpus"], r["session"])][int(r["utterance"])] = r
    corpora = {c: read_corpus(c, corpus_dir) for c in sorted({k[0] for k in by_session})}
    # groups per corpus, split separately so every split has both corpora
    split_of: dict[tuple[str, str], str] = {}
    for corpus in corpora:
        sizes: dict[str, int] = defaultdict(int)
        for (c, sid), utts in by_session.items():
            if c == corpus:
                sizes[corpora[c][sid].group] += len(utts)
        split_of.update({(corpus, g): s for g, s in assign_splits(sizes, seed).items()})
    rows = []
    for (corpus, sid), labs in sorted(by_session.items()):
        sess = corpora[corpus].get(sid)
        if sess is None:
            raise KeyError(f"annotation refers to {corpus} session {sid!r}, absent from the corpus folder")
        history: list[dict] = []
        for pos, u in enumerate(sess.utterances):
            rec = labs.get(u.utterance)
            if rec is not None:
                if rec["speaker"] != u.speaker:
                    raise ValueError(f"{corpus} {sid} utterance {u.utterance}: speaker mismatch")
                rows.append(
                    {
                        "corpus": corpus,
                        "session": sid,
                        "group": sess.group,
                        "split": splits[(corpus, sid)] if splits else split_of[(corpus, sess.group)],
                        "utterance": u.utterance,
                        "position": pos,
                        "role": u.speaker,
                        "text": u.text,
                        "context_roles": [h["role"] for h in history[-context_turns:]],
                        "context_texts": [h["text"] for h in history[-context_turns:]],
                        "labels": [int(l in rec["labels"]) for l in LABELS],
                        "coder": rec["coder"],
                    }
                )
            history.append({"role": u.speaker, "text": u.text})
    return rows


def build_dataset(
    annotations_path: str | os.PathLike | None = None,
    corpus_dir: str | None = None,
    context_turns: int = 4,
    seed: int = DEFAULT_SEED,
):
    """A `datasets.DatasetDict` with train / validation / test (session-grouped)."""
    from datasets import Dataset, DatasetDict

    path = annotations_path or ROOT / RELEASE_NAME
    rows = build_rows(load_annotations(path), corpus_dir, context_turns, seed, release_splits(path))
    return DatasetDict({s: Dataset.from_list([r for r in rows if r["split"] == s]) for s in SPLITS})
