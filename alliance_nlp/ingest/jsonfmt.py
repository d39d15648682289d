"""JSON transcripts: our own session JSON (schema "alliance-nlp/session") and simple lists.

A simple list is `[{"speaker": ..., "text": ..., "start": ..., "end": ...}, ...]`, or an object
holding such a list under "utterances", "turns", "transcript", "records" or "data". Keys are
matched loosely (speaker/name/interlocutor/role, text/utterance/content, start/begin/timestamp,
end/stop); times may be seconds or "hh:mm:ss.fff". Record.source is the 0-based index of the item
in the list (so `data[i]` finds it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ..session import SCHEMA, Session
from ._common import json_head, load_json, role_from_label, time_field
from .base import Record, register_reader, session_from_records

SPEAKER_KEYS = ("speaker", "speaker_id", "speaker_name", "name", "interlocutor", "who", "role")
TEXT_KEYS = ("text", "utterance", "utterance_text", "content", "transcript", "sentence", "message")
START_KEYS = ("start", "start_time", "begin", "timestamp", "time", "onset")
END_KEYS = ("end", "end_time", "stop", "offset")
LIST_KEYS = ("utterances", "turns", "transcript", "records", "data", "items")


def _first(d: dict, keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for k in keys:
        if k in d:
            return k, d[k]
    low = {str(k).lower(): k for k in d}
    for k in keys:
        if k in low:
            return low[k], d[low[k]]
    return None, None


def _items(obj: Any) -> tuple[list | None, str]:
    if isinstance(obj, list):
        return obj, ""
    if isinstance(obj, dict):
        for k in LIST_KEYS:
            if isinstance(obj.get(k), list):
                return obj[k], k
    return None, ""


def sniff_json(path: Path, head: str | None) -> bool:
    if not head:
        return False
    h = head.lstrip()
    if f'"{SCHEMA}"' in h[:2000]:
        return True
    obj = json_head(h)
    items, _ = _items(obj)
    if items is not None:
        return bool(items) and isinstance(items[0], dict) and _first(items[0], TEXT_KEYS)[0] is not None
    if obj is None and h.startswith("["):  # truncated head of a big list
        return any(f'"{k}"' in h[:2000] for k in TEXT_KEYS)
    return False


def records_from_items(items: list, path: Path, where: str = "") -> list[Record]:
    records = []
    for i, it in enumerate(items):
        field = f"{where}[{i}]" if where else f"[{i}]"
        if not isinstance(it, dict):
            raise InputError(path, f"expected an object with speaker and text, got {type(it).__name__}", field=field)
        tk, text = _first(it, TEXT_KEYS)
        if tk is None:
            raise InputError(path, f"no text key (one of {', '.join(TEXT_KEYS)})", field=field)
        if not isinstance(text, str):
            raise InputError(path, "text is not a string", field=f"{field}.{tk}")
        _, spk = _first(it, SPEAKER_KEYS)
        sk, st = _first(it, START_KEYS)
        ek, en = _first(it, END_KEYS)
        start = time_field(path, st, field=f"{field}.{sk}")
        end = time_field(path, en, field=f"{field}.{ek}")
        role = it.get("role") if isinstance(it.get("role"), str) else None
        role = role_from_label(role) or role_from_label(str(spk) if spk is not None else None)
        records.append(Record(speaker=str(spk) if spk is not None else None, text=text, source=i,
                              start=start, end=end, role=role))
    return records


@register_reader("json", extensions=(".json",), sniff=sniff_json,
                 description="alliance-nlp session JSON, or a list of {speaker, text, start, end}")
def read_json(path: Path, *, session_id: str | None = None) -> Session:
    obj = load_json(path)
    if isinstance(obj, dict) and obj.get("schema") == SCHEMA:
        try:
            s = Session.from_dict(obj)
        except ValueError as exc:
            raise InputError(path, str(exc), field="version") from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(path, f"malformed session JSON: {exc}") from None
        if session_id:
            s.id = session_id
        s.source_path = s.source_path or str(path)
        return s
    items, where = _items(obj)
    if items is None:
        keys = ", ".join(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise InputError(path, f"unrecognised JSON transcript (top level: {keys}); expected a session JSON, "
                               "a list of {speaker, text, start, end}, WhisperX or ConvoKit")
    if not items:
        raise InputError(path, "no utterances found (empty list)", field=where or None)
    return session_from_records(records_from_items(items, path, where), path, "json", session_id=session_id)
