"""The classifier's model folder format and the role conventions shared by every inference path
(torch in `alliance_nlp.model`, ONNX Runtime in `alliance_nlp.onnx_encoder`). No torch here, so that
checking a model folder or choosing a path never pays for importing it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import ModelError
from .labels import LABELS

ARTIFACT_FORMAT = "alliance-nlp/marker-classifier"
ARTIFACT_VERSION = 1
ROLE_IDS = {"therapist": 0, "client": 1}
NEUTRAL_ROLE = 2
N_ROLES = 3
ROLE_PREFIX = {"therapist": "therapist: ", "client": "client: "}


def role_id(role: str | None) -> int:
    return ROLE_IDS.get(role or "", NEUTRAL_ROLE)


def with_role(text: str, role: str | None) -> str:
    """The encoder input: the utterance prefixed by its speaker role (no prefix when unknown)."""
    return ROLE_PREFIX.get(role or "", "") + text


def verify_model_folder(path: str | os.PathLike) -> None:
    """Every file of the model folder against its SHA256SUMS; the shipped models' manifests are pinned."""
    from .integrity import PINNED, verify_folder
    from .resources import shipped_model_dir

    path = Path(path)
    pinned = None
    if path.resolve().parent == shipped_model_dir().parent.resolve():  # one of the models we ship
        pinned = PINNED.get(f"models/{path.name}")
    verify_folder(path, pinned)


def read_config(path: str | os.PathLike, verify: bool = True) -> dict[str, Any]:
    """The model folder's config.json, checked (and, with `verify`, every file of the folder against its
    SHA256SUMS); a ModelError naming the file otherwise."""
    path = Path(path)
    f = path / "config.json"
    if not f.is_file():
        raise ModelError(
            f"{path}: no alliance-marker classifier here (config.json missing); pass a model "
            "folder written by `python -m training.train_classifier`"
        )
    if verify:
        verify_model_folder(path)
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{f}: unreadable model config ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != ARTIFACT_FORMAT:
        raise ModelError(f"{f}: not an alliance-marker classifier config")
    if cfg.get("format_version") != ARTIFACT_VERSION:
        raise ModelError(f"{f}: unsupported format_version {cfg.get('format_version')!r}")
    if tuple(cfg.get("labels", ())) != LABELS:
        raise ModelError(f"{f}: label order {cfg.get('labels')} differs from {list(LABELS)}")
    for key in ("base_model", "calibration", "context", "max_length"):
        if key not in cfg:
            raise ModelError(f"{f}: missing field {key!r}")
    return cfg
