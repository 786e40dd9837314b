"""The one question the site asks gpg: whose key is the published release key?

:class:`KeyInspector` is the seam (passed to ``build_site`` and the site's
snapshot); :class:`GpgKeyInspector` asks ``gpg --show-keys`` in a throwaway
home, :class:`FixedKeyInspector` is its fake for tests.  The pure helpers read
the fingerprint from gpg's ``--with-colons`` output and print it for people.
"""

from __future__ import annotations

import tempfile
from typing import Protocol

from repotool.process import Runner


class KeyInspector(Protocol):
    """The one question the site asks gpg: whose key is this?"""

    def fingerprint(self, armored: bytes) -> str: ...


class GpgKeyInspector:
    """``gpg --show-keys --with-colons`` in a throwaway home (no keyring is touched)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def fingerprint(self, armored: bytes) -> str:
        with tempfile.TemporaryDirectory(prefix="repotool-site-gpg-") as home:
            done = self.runner.run(
                ["gpg", "--homedir", home, "--batch", "--with-colons", "--show-keys"],
                input=armored,
                timeout=30,
                where="public key",
                hint="publish a valid armored key (repotool publish)",
            )
        return primary_fingerprint(done.text)


class FixedKeyInspector:
    """The fake of the seam, for tests: every key has the fingerprint it was given."""

    def __init__(self, fingerprint: str) -> None:
        self.fpr = fingerprint
        self.asked: list[bytes] = []

    def fingerprint(self, armored: bytes) -> str:
        self.asked.append(armored)
        return self.fpr


def primary_fingerprint(colons: str) -> str:
    """Pure: the primary key's fingerprint from ``--with-colons`` output ('' if none)."""
    seen_pub = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            seen_pub = True
        elif fields[0] == "fpr" and seen_pub and len(fields) > 9:
            return fields[9]
    return ""


def format_fingerprint(fpr: str) -> str:
    """'ABCD1234...' -> 'ABCD 1234 ...  ...' the way gpg prints it for people."""
    groups = [fpr[i : i + 4] for i in range(0, len(fpr), 4)]
    if len(groups) == 10:
        return " ".join(groups[:5]) + "  " + " ".join(groups[5:])
    return " ".join(groups)
