"""Where the package's data files live: found through the installed package, never the checkout.

The shipped classifier lives in the repository's top-level `models/` folder, which the wheel maps to
the `alliance_nlp.models` package; role models, the default WAI mapping and instrument scale files
are in `alliance_nlp/resources/`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_MODEL_NAME = "alliance-markers-v2"


def resource_path(*parts: str) -> Path:
    """A file or folder in alliance_nlp/resources/ (role models, WAI mapping, scales)."""
    return Path(str(resources.files("alliance_nlp").joinpath("resources", *parts)))


def shipped_model_dir(name: str = DEFAULT_MODEL_NAME) -> Path:
    """The folder of a shipped model (package data `alliance_nlp.models`, the repository's models/)."""
    return Path(str(resources.files("alliance_nlp.models").joinpath(name)))
