"""SHA-256 manifests: every file of a model folder and every shipped resource is checked before use.

A model folder (and `alliance_nlp/resources/`) carries `SHA256SUMS`, one line per file in the format
of GNU `sha256sum` (`<hex>  <relative path>`), so `sha256sum -c SHA256SUMS` checks it too. Loading
verifies every listed file, refuses files the manifest does not list (an added adapter would otherwise
be loaded unchecked) and names the first bad file in one line. The manifests shipped with this
version are themselves pinned below, so editing a file and its manifest together is still caught for
the shipped model and resources. Training and `finetune` write the manifest of the folders they make;
`alliance-nlp checksum FOLDER` records one for a folder you trust.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import IntegrityError

MANIFEST = "SHA256SUMS"
# SHA-256 of the SHA256SUMS shipped with this version, by folder (relative to the package data roots).
# A test recomputes them; after retraining a shipped model or refitting a resource, update them.
PINNED = {
    "resources": "94319a0f09412b86ebaf8e8bf2e27184698bb2ee32c5bad78ab036f1c1373ff0",
    "models/alliance-markers-v2": "e4112fda3c2067f1805cc31563dda35e6aec1db449565d9eeda8b86e6a5d3ad3",
    "models/alliance-markers-v1": "503236a45d302eb107073c137f37b86c1c030a5981c6530cd586a30257309255",
}
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc",)
_verified: dict[Path, tuple] = {}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(folder).as_posix()
            if rel != MANIFEST and not name.endswith(_SKIP_SUFFIXES) and not (folder / rel).is_symlink():
                out.append(rel)
    return sorted(out)


def write_manifest(folder: str | os.PathLike) -> Path:
    """Record the SHA-256 of every file under `folder` (recursively) in `folder/SHA256SUMS`."""
    folder = Path(folder)
    lines = [f"{sha256_file(folder / rel)}  {rel}\n" for rel in _files(folder)]
    path = folder / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    _verified.pop(folder.resolve(), None)
    return path


def read_manifest(folder: str | os.PathLike) -> dict[str, str]:
    """{relative path: sha256} from `folder/SHA256SUMS`; an IntegrityError naming the line otherwise."""
    path = Path(folder) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IntegrityError(
            f"{Path(folder)}: no {MANIFEST} (the SHA-256 of every file, checked on load); training and "
            f"finetune write it; for a folder you trust run `alliance-nlp checksum {folder}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{path}: unreadable ({exc.__class__.__name__})") from None
    out: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        rel = rel.lstrip("*")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()) or not rel:
            raise IntegrityError(f"{path}:{i}: not a '<sha256>  <file>' line")
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise IntegrityError(f"{path}:{i}: file outside the folder")
        out[rel] = digest.lower()
    return out


def _signature(folder: Path) -> tuple:
    sig = []
    for rel in [MANIFEST, *_files(folder)]:
        st = (folder / rel).stat()
        sig.append((rel, st.st_size, st.st_mtime_ns))
    return tuple(sig)


def verify_folder(folder: str | os.PathLike, pinned: str | None = None) -> None:
    """Check every file of `folder` against its SHA256SUMS (and the manifest against `pinned`, if given).

    Raises IntegrityError naming the first file that is changed, missing or unlisted. A folder checked
    once is not hashed again while no file's size or modification time changes.
    """
    folder = Path(folder)
    key = folder.resolve()
    try:
        sig = _signature(folder)
    except OSError:
        sig = None
    if sig is not None and _verified.get(key) == (sig, pinned):
        return
    listed = read_manifest(folder)
    if pinned is not None and sha256_file(folder / MANIFEST) != pinned:
        raise IntegrityError(
            f"{folder / MANIFEST}: differs from the manifest this version of alliance-nlp was released with "
            "(a shipped file was changed); reinstall alliance-nlp"
        )
    for rel, digest in listed.items():
        f = folder / rel
        if not f.is_file():
            raise IntegrityError(f"{f}: listed in {MANIFEST} but missing")
        if sha256_file(f) != digest:
            raise IntegrityError(f"{f}: SHA-256 differs from {MANIFEST} (the file was changed or damaged)")
    extra = [rel for rel in _files(folder) if rel not in listed]
    if extra:
        raise IntegrityError(f"{folder / extra[0]}: not listed in {MANIFEST} (an unverified file is never loaded)")
    if sig is not None:
        _verified[key] = (sig, pinned)


def verify_file(path: str | os.PathLike) -> Path:
    """Check one file against the manifest of the package resources (when it is one of them) or of its
    own folder (when that folder has one); a user's file without a manifest is taken as it is."""
    from .resources import resource_path

    path = Path(path)
    root = resource_path()
    if path.resolve().is_relative_to(root.resolve()):
        verify_folder(root, PINNED["resources"])
    elif (path.parent / MANIFEST).is_file():
        digest = read_manifest(path.parent).get(path.name)
        if digest is None:
            raise IntegrityError(f"{path}: not listed in {path.parent / MANIFEST}")
        if path.is_file() and sha256_file(path) != digest:
            raise IntegrityError(f"{path}: SHA-256 differs from {MANIFEST} (the file was changed or damaged)")
    return path


def refresh_manifest_for(path: str | os.PathLike) -> Path | None:
    """After writing `path`: rewrite the manifest that covers it (the package resources', or its own
    folder's when that folder has one). For development writers (training, fitting, gating); the pins
    in PINNED must then be updated (a test says to what)."""
    from .resources import resource_path

    path, root = Path(path), resource_path()
    if path.resolve().is_relative_to(root.resolve()):
        return write_manifest(root)
    if (path.parent / MANIFEST).is_file():
        return write_manifest(path.parent)
    return None
