"""JSON transcripts: our own session JSON (schema "alliance-nlp/session") and simple lists.

A simple list is `[{"speaker": ..., "text": ..., "start": ..., "end": ...}, ...]`, or an object
holding such a list under "utterances", "turns", "transcript", "records" or "data". Keys are
matched loosely (speaker/name/interlocutor/role, text/utterance/content, start/begin/timestamp,
end/stop); times may be seconds or "hh:mm:ss.fff". Record.source is the 0-based index of the item
in the list (so `data[i]` finds it). See `read_json` for the size limits.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..session import SCHEMA, SCHEMA_VERSION, Session
from ._common import json_head, load_json, role_from_label, shape, shape_name, shape_names, time_field
from .base import MAX_BYTES, MAX_DEPTH, MAX_RECORDS, Record, register_reader, session_from_records, too_many_records

SPEAKER_KEYS = ("speaker", "speaker_id", "speaker_name", "name", "interlocutor", "who", "role")
TEXT_KEYS = ("text", "utterance", "utterance_text", "content", "transcript", "sentence", "message")
START_KEYS = ("start", "start_time", "begin", "timestamp", "time", "onset")
END_KEYS = ("end", "end_time", "stop", "offset")
LIST_KEYS = ("utterances", "turns", "transcript", "records", "data", "items")
_KEY_MAX = max(map(len, SPEAKER_KEYS + TEXT_KEYS + START_KEYS + END_KEYS))


def _first(d: dict, keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for k in keys:
        if k in d:
            return k, d[k]
    low = {str(k).lower(): k for k in d if len(str(k)) <= _KEY_MAX}  # (a longer key cannot match)
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
        records.append(
            Record(speaker=str(spk) if spk is not None else None, text=text, source=i, start=start, end=end, role=role)
        )
    return records


def _is_time(v: Any) -> bool:
    return v is None or isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def check_session_dict(d: dict, path: Path, max_records: int | None = MAX_RECORDS) -> None:
    """The shape later stages rely on (strings, lists, finite times), as InputError naming the field;
    `Session.from_dict` itself trusts its input."""

    def bad(field: str, what: str) -> InputError:
        return InputError(path, f"malformed session JSON: {what}", field=field)

    major = str(d.get("version", ""))[:20].split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise InputError(
            path, f"unsupported session version {shape(d.get('version'))} (this is {SCHEMA_VERSION})", field="version"
        )
    if not isinstance(d.get("id"), (str, int)) or isinstance(d.get("id"), bool):
        raise bad("id", "no session id")
    for key, typ in (("turns", list), ("speakers", list), ("meta", dict)):
        if key in d and not isinstance(d[key], typ):
            raise bad(key, f"expected {'a list' if typ is list else 'an object'}")
    n = 0
    for i, t in enumerate(d.get("turns", [])):
        f = f"turns[{i}]"
        if not isinstance(t, dict) or not isinstance(t.get("speaker"), str):
            raise bad(f, "expected an object with a 'speaker' string")
        if not isinstance(t.get("text", ""), str) or not isinstance(t.get("utterances", []), list):
            raise bad(f, "'text' must be a string and 'utterances' a list")
        for j, u in enumerate(t.get("utterances", [])):
            n += 1
            if max_records is not None and n > max_records:
                raise too_many_records(path, max_records, "utterances")
            fu = f"{f}.utterances[{j}]"
            if not isinstance(u, dict) or not isinstance(u.get("text"), str) or not isinstance(u.get("speaker"), str):
                raise bad(fu, "expected an object with 'text' and 'speaker' strings")
            for k in ("start", "end"):
                if not _is_time(u.get(k)):
                    raise bad(f"{fu}.{k}", f"not a valid time: {shape(u.get(k))}")
            if not isinstance(u.get("words", []), list):
                raise bad(f"{fu}.words", "expected a list")
            for m, w in enumerate(u.get("words", [])):
                fw = f"{fu}.words[{m}]"
                if not isinstance(w, dict) or not isinstance(w.get("text"), str):
                    raise bad(fw, "expected a word object with a 'text' string")
                for k in ("start", "end"):
                    if not _is_time(w.get(k)):
                        raise bad(f"{fw}.{k}", f"not a valid time: {shape(w.get(k))}")
    for i, sp in enumerate(d.get("speakers", [])):
        if not isinstance(sp, dict) or not isinstance(sp.get("id"), str):
            raise bad(f"speakers[{i}]", "expected an object with an 'id' string")


@register_reader(
    "json",
    extensions=(".json",),
    sniff=sniff_json,
    description="alliance-nlp session JSON, or a list of {speaker, text, start, end}",
)
def read_json(
    path: Path,
    *,
    session_id: str | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_depth: int | None = MAX_DEPTH,
    max_records: int | None = MAX_RECORDS,
) -> Session:
    """Read a session JSON or a simple utterance list.

    Limits, each a LimitError when exceeded and None to switch off: `max_bytes` (file size, 64 MiB),
    `max_depth` (JSON nesting, 100), `max_records` (list items or session utterances, 500,000).
    """
    obj = load_json(path, max_bytes=max_bytes, max_depth=max_depth)
    if isinstance(obj, dict) and obj.get("schema") == SCHEMA:
        check_session_dict(obj, path, max_records)
        try:
            s = Session.from_dict(obj)
        except Exception as exc:  # noqa: BLE001 - the model's own parsing; the message must not echo content
            key = f" {shape_name(exc.args[0])}" if isinstance(exc, KeyError) and exc.args else ""
            raise InputError(path, f"malformed session JSON ({type(exc).__name__}{key})") from None
        if session_id:
            s.id = session_id
        s.source_path = s.source_path or str(path)
        return s
    items, where = _items(obj)
    if items is None:
        keys = shape_names(list(obj)) if isinstance(obj, dict) else type(obj).__name__
        raise InputError(
            path,
            f"unrecognised JSON transcript (top level: {keys}); expected a session JSON, "
            "a list of {speaker, text, start, end}, WhisperX or ConvoKit",
        )
    if not items:
        raise InputError(path, "no utterances found (empty list)", field=where or None)
    if max_records is not None and len(items) > max_records:
        raise too_many_records(path, max_records, "items")
    return session_from_records(records_from_items(items, path, where), path, "json", session_id=session_id)
