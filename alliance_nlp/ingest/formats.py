"""Import every reader module so each registers itself (order = sniffing priority)."""

from __future__ import annotations

# ruff: noqa: I001  (the order of these imports is the order readers are tried in: keep it)

from . import subtitles  # noqa: F401  vtt, srt
from . import chat  # noqa: F401  cha
from . import rttm  # noqa: F401  rttm (+ words json)
from . import whisperx  # noqa: F401  whisperx (before json: both take .json)
from . import convokit  # noqa: F401  convokit (.jsonl, .json)
from . import jsonfmt  # noqa: F401  json (session JSON, simple lists)
from . import csvfmt  # noqa: F401  csv, tsv
from . import otter  # noqa: F401  otter (.txt, sniffed)
from . import text  # noqa: F401  text (.txt fallback)
from . import docxfmt  # noqa: F401  docx
