"""Writing and listing advisories: the next id, a new file's text, the list table.

Pure functions (values in, values out)::

    next_advisory_id(existing_ids, year) -> "PSSA-<year>-<n>"
    scaffold_advisory(advisory_id, ...) -> str       # the text of a new advisory file
    advisory_rows(advisories) -> list[dict]          # for `advisory list`
    format_table(rows) -> str                        # what `advisory list` prints

What ``advisory new`` and ``advisory list`` are made of; the commands themselves
are :mod:`repotool.commands.advisory`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from repotool.errors import AdvisoryError
from repotool.records.models import Advisory
from repotool.records.screening import PLACEHOLDER, TEMPLATE_TEXT
from repotool.records.terms import ADVISORY_ID_RE, ADVISORY_TYPES, SEVERITIES

ADVISORY_PREFIX = "PSSA"


def next_advisory_id(existing_ids: Iterable[str], year: int) -> str:
    """Pure: the first id of ``year`` after every id already taken that year."""
    taken = [
        int(m.group(2))
        for i in existing_ids
        if (m := ADVISORY_ID_RE.match(i)) and int(m.group(1)) == year
    ]
    return f"{ADVISORY_PREFIX}-{year:04d}-{max(taken, default=0) + 1:04d}"


def scaffold_advisory(
    advisory_id: str,
    *,
    today: dt.date,
    targets: Sequence[str],
    advisory_type: str = "security",
    severity: str = "Important",
    title: str = "",
    cves: Sequence[str] = (),
    affected: Sequence[str] = (),
) -> str:
    """Pure: the text of a new advisory file.

    It fails ``advisory check`` (and so ``release`` and ``announce``) until
    every ``FILL IN`` is replaced, the fixed packages, the CVEs (or
    ``cves_none_reason``) and ``fixed_in`` are given, so a half-written
    advisory can never be published.
    """
    if advisory_type not in ADVISORY_TYPES:
        raise AdvisoryError(
            f"unknown advisory type '{advisory_type}'",
            where="--type",
            hint=f"use one of {', '.join(ADVISORY_TYPES)}",
        )
    if severity not in SEVERITIES:
        raise AdvisoryError(
            f"unknown severity '{severity}'",
            where="--severity",
            hint=f"use one of {', '.join(SEVERITIES)}",
        )
    cve_lines = "".join(f"\n  - {c}" for c in cves) if cves else " []"
    fill = {k: f"{PLACEHOLDER}: {v}" for k, v in TEMPLATE_TEXT.items()}
    if not cves:
        cve_lines += "   # or, when none is assigned: cves_none_reason: <why>"
    affected_lines = "".join(f'\n  - "{a}"' for a in affected) or (
        f"\n  - {_yaml_str(fill['affected_releases'])}"
    )
    package_lines = "".join(
        f"\n  {t}: []   # - {{name: <package>, evr: <version>-<release>{_dist(t)}}}"
        for t in targets
    )
    title_text = title or fill["title"]
    return f"""---
id: {advisory_id}
type: {advisory_type}
severity: {severity}
title: {_yaml_str(title_text)}
summary: ""
issued: {today.isoformat()}
updated: {today.isoformat()}
cves:{cve_lines}
references: []
packages:{package_lines}
affected_releases:{affected_lines}
fixed_in: ""   # the release or respin that ships the fix, e.g. "3.3.2-2"
---
## Description

{fill["Description"]}

## Impact

{fill["Impact"]}

## Remediation

{fill["Remediation"]}

```
yum update
```
"""


def _dist(target: str) -> str:
    return f".{target}" if re.match(r"^el\d+$", target) else ""


def _yaml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def advisory_rows(advisories: Iterable[Advisory]) -> list[dict[str, Any]]:
    """Pure: one JSON-able dict per advisory (newest first), for listing."""
    rows = []
    for adv in sorted(advisories, key=lambda a: (a.issued, a.id), reverse=True):
        rows.append(
            {
                "id": adv.id,
                "type": adv.type,
                "severity": adv.severity,
                "title": adv.title,
                "issued": adv.issued.isoformat(),
                "updated": adv.last_updated.isoformat(),
                "cves": list(adv.cves),
                "cves_none_reason": adv.cves_none_reason,
                "packages": {t: [str(p.nevra) for p in ps] for t, ps in adv.packages.items()},
                "affected_releases": list(adv.affected_releases),
                "fixed_in": adv.fixed_in,
                "source": adv.source,
            }
        )
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Pure: a plain-text table of advisory rows (what ``advisory list`` prints)."""
    header = ("ID", "TYPE", "SEVERITY", "ISSUED", "CVES", "TITLE")
    body = [
        (
            str(r["id"]),
            str(r["type"]),
            str(r["severity"] or "-"),
            str(r["issued"]),
            ",".join(r["cves"]) or "-",
            str(r["title"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *body]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)
