"""ConvoKit utterances: `utterances.jsonl` (one JSON object per line: id, speaker, text, reply_to,
timestamp, conversation_id, meta), or the older `utterances.json` list.

A corpus file holding several conversations needs `conversation=ID`. Roles come from the
utterance meta ("role", "speaker_role", "interlocutor") or from a `speakers.json` next to the file.
Epoch timestamps are made relative to the conversation's first one. Record.source is the 1-based
line number (jsonl) or 0-based list index (json). See `read_convokit` for the size limits.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..session import Session
from ._common import (
    _DepthError,
    depth_error,
    json_head,
    load_json,
    load_text,
    parse_json,
    role_from_label,
    shape_names,
    time_field,
)
from .base import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_RECORDS,
    Record,
    read_text,
    register_reader,
    session_from_records,
    too_many_records,
)

ROLE_KEYS = ("role", "speaker_role", "interlocutor", "speaker_type", "type")


def sniff_convokit(path: Path, head: str | None) -> bool:
    if not head:
        return False
    first = head.lstrip().split("\n", 1)[0]
    obj = json_head(first)
    if isinstance(obj, list) and obj:
        obj = obj[0]
    elif obj is None and first.startswith("["):
        return '"conversation_id"' in head[:3000] and '"reply_to"' in head[:3000]
    return isinstance(obj, dict) and "conversation_id" in obj and "speaker" in obj and "text" in obj


def _role_in(meta) -> str | None:
    if not isinstance(meta, dict):
        return None
    for k in ROLE_KEYS:
        if isinstance(meta.get(k), str) and role_from_label(meta[k]):
            return role_from_label(meta[k])
    return None


def _speaker_roles(path: Path, max_bytes: int | None, max_depth: int | None) -> dict[str, str]:
    """Roles from a `speakers.json` next to the file; best effort (any problem: no roles from it)."""
    sp = path.parent / "speakers.json"
    if not sp.exists():
        return {}
    try:
        obj = parse_json(read_text(sp, max_bytes), max_depth)
    except (InputError, ValueError):
        return {}
    roles = {}
    if isinstance(obj, dict):
        for sid, v in obj.items():
            r = _role_in(v.get("meta", v)) if isinstance(v, dict) else None
            if r:
                roles[str(sid)] = r
    return roles


@register_reader(
    "convokit",
    extensions=(".jsonl", ".json"),
    sniff=sniff_convokit,
    description="ConvoKit utterances.jsonl (id, speaker, text, reply_to, timestamp, conversation_id)",
)
def read_convokit(
    path: Path,
    *,
    conversation: str | None = None,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_depth: int | None = MAX_DEPTH,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read ConvoKit utterances (`conversation=ID` picks one conversation of a corpus file).

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB; also
    for speakers.json), `max_depth` (JSON nesting, 100), `max_records` (utterances in the file, 500,000).
    A whole-corpus file may need larger limits.
    """
    text = load_text(path, max_bytes)
    items: list[tuple[int, dict]] = []
    if text.lstrip().startswith("["):
        data = load_json(path, text, max_depth=max_depth)
        if not isinstance(data, list):
            raise InputError(path, "expected a JSON list of utterances")
        if max_records is not None and len(data) > max_records:
            raise too_many_records(path, max_records, "utterances")
        for i, obj in enumerate(data):
            if not isinstance(obj, dict):
                raise InputError(path, "expected an utterance object", field=f"[{i}]")
            items.append((i, obj))
    else:
        for no, ln in enumerate(text.splitlines(), start=1):
            if not ln.strip():
                continue
            try:
                obj = parse_json(ln, max_depth)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"invalid JSON line: {exc.msg} (column {exc.colno})", line=no) from None
            except _DepthError as exc:
                raise depth_error(path, exc, line=no) from None
            except ValueError as exc:
                raise InputError(path, f"invalid JSON line: {exc}", line=no) from None
            if not isinstance(obj, dict):
                raise InputError(path, "expected an utterance object", line=no)
            if max_records is not None and len(items) >= max_records:
                raise too_many_records(path, max_records, "utterances")
            items.append((no, obj))
    for src, obj in items:
        if "text" not in obj or "speaker" not in obj:
            missing = "text" if "text" not in obj else "speaker"
            raise InputError(
                path,
                f"utterance has no {missing!r}",
                line=src if not text.lstrip().startswith("[") else None,
                field=missing,
            )
    convs = list(dict.fromkeys(str(o.get("conversation_id")) for _, o in items if o.get("conversation_id") is not None))
    if conversation is not None:
        items = [(s, o) for s, o in items if str(o.get("conversation_id")) == str(conversation)]
        if not items:
            raise InputError(
                path,
                f"no conversation {conversation!r}; conversations: {shape_names(convs, 20)}",
                field="conversation_id",
            )
    elif len(convs) > 1:
        raise InputError(
            path,
            f"{len(convs)} conversations in this file ({shape_names(convs, 10)}); choose one with conversation=ID",
            field="conversation_id",
        )
    roles = _speaker_roles(path, max_bytes, max_depth)
    is_jsonl = not text.lstrip().startswith("[")
    times = []
    for src, o in items:
        times.append(time_field(path, o.get("timestamp"), line=src if is_jsonl else None, field="timestamp"))
    known = [t for t in times if t is not None]
    origin = min(known) if known and min(known) > 1e8 else 0.0  # epoch seconds -> session-relative
    records = []
    for (src, o), t in zip(items, times):
        spk = o["speaker"]
        if isinstance(spk, dict):  # some dumps inline the speaker object
            spk = spk.get("id", spk.get("name"))
        spk = None if spk is None else str(spk)
        role = _role_in(o.get("meta")) or roles.get(spk or "") or role_from_label(spk)
        records.append(
            Record(
                speaker=spk,
                text=str(o.get("text") or ""),
                source=src,
                start=None if t is None else t - origin,
                role=role,
            )
        )
    meta: dict[str, object] = {"conversation_id": convs[0] if len(convs) == 1 else conversation}
    if origin:
        meta["timestamp_origin"] = origin
    sid = session_id or (
        str(conversation) if conversation is not None else path.parent.name if path.stem == "utterances" else None
    )
    return session_from_records(records, path, "convokit", session_id=sid, meta=meta)
