"""The sha256 of a stored file or directory: the one content hash of files in the package (pure code)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

BLOCK = 1 << 20


def _update_with_file(digest, path: str | os.PathLike) -> None:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    _update_with_file(digest, path)
    return digest.hexdigest()


def directory_sha256(directory: Path) -> str:
    """Hex sha256 over the name and bytes of each file directly in ``directory``, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).iterdir()):
        digest.update(path.name.encode())
        _update_with_file(digest, path)
    return digest.hexdigest()


def require_content(path: Path, expected: str, what: str, repair: str) -> None:
    """Refuse ``path`` (a file or an artifact directory) unless it exists and holds the ``expected`` hash."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} is missing: {repair}")
    found = directory_sha256(path) if path.is_dir() else file_sha256(path)
    if found != expected:
        raise ValueError(f"{what} {path} holds content {found[:12]}, not {expected[:12]} as materialised: "
                         f"truncated, changed or partly deleted; {repair}")
