"""The fixed words of an advisory record: its types and the severities dnf knows.

Kept apart from :mod:`repotool.records.models` (pydantic) so that the command line can
offer them as choices without importing the record models.
"""

from __future__ import annotations

#: the severities dnf knows (``dnf updateinfo --sec-severity``)
SEVERITIES: tuple[str, ...] = ("Critical", "Important", "Moderate", "Low")
ADVISORY_TYPES: tuple[str, ...] = ("security", "bugfix", "enhancement")
