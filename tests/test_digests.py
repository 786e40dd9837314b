"""repotool.digests: the one file digest every area uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

from repotool.digests import file_digest


def test_file_digest_matches_the_sum_tools(tmp_path: Path) -> None:
    path = tmp_path / "image.iso"
    path.write_bytes(bytes(range(256)) * 9000)  # larger than one read block
    for algo in ("sha256", "sha1", "sha512"):
        tool = subprocess.run(
            [f"{algo}sum", str(path)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        assert file_digest(path, algo) == tool
    assert file_digest(path) == file_digest(path, "sha256")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_digest(empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
