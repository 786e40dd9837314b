"""The digest of a file's bytes, for every area that checks or publishes files."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Lower-case hex digest of the file at ``path`` (``algo``: a hashlib name)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algo).hexdigest()
