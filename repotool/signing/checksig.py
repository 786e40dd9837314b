"""Pure: what ``rpmkeys --checksig -v`` says about each package.

Text in, verdicts out; running rpmkeys is :meth:`repotool.signing.signer.Signer.check_rpms`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path


def read_checksig(output: str, short_id: str) -> tuple[bool, str]:
    """Pure: read ``rpmkeys --checksig -v`` output for one package.

    A package passes only when every digest is OK and a signature made by the
    expected key verified; an unsigned package fails.
    """
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    nokey = [ln for ln in lines if ln.endswith("NOKEY")]
    if nokey:
        m = re.search(r"key ID ([0-9a-fA-F]+)", nokey[0])
        other = f" (key ID {m.group(1)})" if m else ""
        return False, f"the package is signed by another key{other}, not the release key"
    bad = [ln for ln in lines if "NOT OK" in ln or "BAD" in ln]
    if bad:
        return False, bad[0]
    sig_ok = [
        ln
        for ln in lines
        if "Signature, key ID" in ln and ln.endswith(": OK") and short_id.lower() in ln.lower()
    ]
    if not sig_ok:
        if not any("Signature" in ln for ln in lines):
            return False, "the package is not signed"
        return False, "the package is signed by another key"
    if not any("digest: OK" in ln for ln in lines):
        return False, "no digest was checked"
    return True, sig_ok[0]


def split_checksig_output(stdout: str, stderr: str, paths: Sequence[Path]) -> list[str]:
    """Pure: cut ``rpmkeys --checksig -v a b c`` output into one block per file.

    A file rpm cannot open at all appears only on stderr; its block is that error.
    """
    heads = {f"{p}:": i for i, p in enumerate(paths)}
    blocks = [""] * len(paths)
    current: int | None = None
    for line in stdout.splitlines():
        if line in heads:
            current = heads[line]
        elif current is not None:
            blocks[current] += line + "\n"
    for line in stderr.splitlines():
        for i, p in enumerate(paths):
            if str(p) in line:
                blocks[i] += line.strip() + "  (NOT OK)\n"
    return blocks
