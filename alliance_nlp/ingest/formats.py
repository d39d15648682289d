"""Import every reader module so each registers itself (order = sniffing priority)."""

from __future__ import annotations

from . import (
    chat,  # noqa: F401  cha
    convokit,  # noqa: F401  convokit (.jsonl, .json)
    csvfmt,  # noqa: F401  csv, tsv
    docxfmt,  # noqa: F401  docx
    jsonfmt,  # noqa: F401  json (session JSON, simple lists)
    otter,  # noqa: F401  otter (.txt, sniffed)
    rttm,  # noqa: F401  rttm (+ words json)
    subtitles,  # noqa: F401  vtt, srt
    text,  # noqa: F401  text (.txt fallback)
    whisperx,  # noqa: F401  whisperx (before json: both take .json)
)
