"""The fixed words and shapes of a record: advisory types, the severities dnf
knows, and the patterns of ids, CVEs and versions.

Kept apart from :mod:`repotool.records.models` (pydantic) so that the command
line can offer them as choices, and check ``--cve`` and ``--affected`` at once,
without importing the record models.  The patterns end in ``\\Z``: ``$``
would accept a trailing line break.
"""

from __future__ import annotations

import re

#: the severities dnf knows (``dnf updateinfo --sec-severity``)
SEVERITIES: tuple[str, ...] = ("Critical", "Important", "Moderate", "Low")
ADVISORY_TYPES: tuple[str, ...] = ("security", "bugfix", "enhancement")

ADVISORY_ID_RE = re.compile(r"^PSSA-(\d{4})-(\d{4,})\Z")
CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}\Z")
#: a release version: 3.3.2
RELEASE_VERSION_RE = re.compile(r"^\d+(\.\d+)*\Z")
#: a respin of a release's media: 3.3.2-2
RESPIN_VERSION_RE = re.compile(r"^(\d+(?:\.\d+)*)-(\d+)\Z")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*\Z")


def respin_number(text: str) -> int:
    """``repotool release --respin N``: the respin's number.

    A respin version (``3.3.2-3``) is explained rather than taken apart: the
    release's version comes from repotool.toml, and a version typed here that
    differs from it must not be dropped in silence.
    """
    import argparse

    if text.isdigit() and int(text) >= 1:
        return int(text)
    m = RESPIN_VERSION_RE.match(text)
    if m:
        raise argparse.ArgumentTypeError(
            f"{text!r} is a respin version; --respin takes its number: --respin {m.group(2)} "
            f"makes the media <version>-{m.group(2)}, with <version> from repotool.toml"
        )
    raise argparse.ArgumentTypeError(f"{text!r} is not a respin number: write e.g. --respin 2")
