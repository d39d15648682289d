"""Evaluation through the product: corpus sessions run through the same `Pipeline` that `analyze` runs.

Every figure we publish is computed from what this module returns, so evaluation measures what users
get: the same components (diarize, segment, classify, aggregate), the same units (records, long ones
cut by segment), the model's own thresholds, and the same aggregation code. Nothing here re-implements
a stage.

- `run_pipeline(corpus_sessions, steps)` yields (corpus session, analysed Session) pairs, streaming
  through `Pipeline.pipe` (shared classifier batches), with the corpus's own role labels.
- `record_probabilities(session)` maps the pipeline's units back to the coded records (a record cut
  into pieces takes the maximum probability of its pieces, so it carries a marker when any piece does).
- Results are cached in evaluation/cache/ by a fingerprint of the model, mapping and pipeline options.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alliance_nlp.classify import default_model_path
from alliance_nlp.labels import LABELS
from alliance_nlp.pipeline import Pipeline
from alliance_nlp.session import Session
from training.corpora import CorpusSession, to_session

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "evaluation" / "cache"
TAG_STEPS = ("diarize", "segment", "classify")


def build_pipeline(
    steps: Sequence[str] = TAG_STEPS, model: str | None = None, mapping: str | None = None, **config: dict[str, Any]
) -> Pipeline:
    cfg: dict[str, dict[str, Any]] = {k: dict(v) for k, v in config.items()}
    if model and "classify" in steps:
        cfg.setdefault("classify", {})["path"] = model
    if mapping and "aggregate" in steps:
        cfg.setdefault("aggregate", {})["path"] = mapping
    return Pipeline.from_names(steps, cfg)


def run_pipeline(
    corpus_sessions: Iterable[CorpusSession],
    pipeline: Pipeline,
    batch_size: int = 32,
    progress: str | None = None,
    total: int | None = None,
) -> Iterator[tuple[CorpusSession, Session]]:
    """Analyse corpus sessions with `pipeline`, in order; an error stops the evaluation (never skipped)."""
    items = list(corpus_sessions)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total or len(items), desc=progress, unit="session", file=sys.stderr)
    for cs, s in zip(items, pipeline.pipe((to_session(cs) for cs in items), batch_size=batch_size)):
        if bar is not None:
            bar.update(1)
        yield cs, s
    if bar is not None:
        bar.close()


def record_probabilities(session: Session) -> dict[int, np.ndarray]:
    """Per input record (`source`), the max over its units of each marker probability."""
    out: dict[int, np.ndarray] = {}
    for u in session.utterances:
        p = np.array([u.probabilities[lab] for lab in LABELS])
        out[u.source] = np.maximum(out[u.source], p) if u.source in out else p  # type: ignore[index]
    return out


def fingerprint(model: str | None = None, extra: dict[str, Any] | None = None) -> str:
    """Short hash of the classifier's files and the options, so cached results follow the model."""
    root = Path(model) if model else default_model_path()
    h = hashlib.sha256(json.dumps(extra or {}, sort_keys=True).encode())
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.suffix in (".json", ".safetensors"):
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def cached_sessions(
    corpus_sessions: dict[str, CorpusSession],
    name: str,
    model: str | None = None,
    batch_size: int = 32,
    config: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Session]:
    """Every corpus session analysed by diarize, segment and classify, computed once per model version
    and component options `config` (e.g. {"segment": {"max_chars": 1}}), cached as gzipped session JSON
    lines in evaluation/cache/."""
    import gzip

    extra: dict[str, Any] = {"steps": list(TAG_STEPS)}
    if config:
        extra["config"] = config  # the default options keep the fingerprint they always had
    path = CACHE / f"{name}-{fingerprint(model, extra)}.jsonl.gz"
    cached: dict[str, Session] = {}
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                key, d = json.loads(line)
                cached[key] = Session.from_dict(d)
    todo = {k: v for k, v in corpus_sessions.items() if k not in cached}
    if todo:
        pipe = build_pipeline(TAG_STEPS, model, **(config or {}))
        for cs, s in run_pipeline(todo.values(), pipe, batch_size, progress=f"analysing {name}"):
            cached[cs.session] = s
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as fh:
            for k, s in cached.items():
                fh.write(json.dumps([k, s.to_dict()]) + "\n")
        tmp.replace(path)
    return {k: cached[k] for k in corpus_sessions}


def split_rows(release: Path, corpus_dir: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The release's coded records per split (train, validation, test), each in session and utterance
    order (the order of `training.classifier.sessions_from_rows`), with their text from the corpora."""
    from training.dataset import build_rows, load_annotations, release_splits

    rows = build_rows(load_annotations(release), corpus_dir, splits=release_splits(release))
    rows.sort(key=lambda r: (r["corpus"], r["session"], r["position"]))
    return {s: [r for r in rows if r["split"] == s] for s in ("train", "validation", "test")}


def split_probabilities(
    rows: Sequence[dict[str, Any]],
    name: str,
    model: str | None = None,
    corpus_dir: str | None = None,
    config: dict[str, dict[str, Any]] | None = None,
) -> np.ndarray:
    """Per coded record of `rows` (in their order), the probabilities the pipeline gives with `model`:
    each record's whole session analysed (cached as `<corpus>-<name>`), mapped back to the record."""
    from training.corpora import read_corpus

    analysed: dict[tuple[str, str], dict[int, np.ndarray]] = {}
    for corpus in sorted({r["corpus"] for r in rows}):
        whole = read_corpus(corpus, corpus_dir)
        picked = {k: whole[k] for k in sorted({r["session"] for r in rows if r["corpus"] == corpus})}
        for sid, s in cached_sessions(picked, f"{corpus}-{name}", model, config=config).items():
            analysed[(corpus, sid)] = record_probabilities(s)
    return np.array([analysed[(r["corpus"], r["session"])][r["utterance"]] for r in rows])
