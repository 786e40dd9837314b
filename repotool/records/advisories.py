"""Advisories against the repository: validation, updateinfo, the next id.

Pure functions (values in, values out)::

    check_advisories(advisories, repo_packages)      # raises AdvisoryMismatchError
    advisory_problems(advisories, repo_packages)     # the same, as a list of RecordProblem
    render_updateinfo(advisories, target, packages, sums=None, ...) -> bytes
    next_advisory_id(existing_ids, year) -> "PSSA-<year>-<n>"
    scaffold_advisory(advisory_id, ...) -> str       # the text of a new advisory file
    advisory_rows(advisories) -> list[dict]          # for `advisory list`

``repo_packages`` maps a target name (``el6``) to the NEVRAs its repository
holds, as :class:`repotool.evr.NEVRA` values.  The records themselves come from
:mod:`repotool.records.models`.

Thin shell: :func:`read_repo_packages` reads a published repository's primary
metadata with createrepo_c.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import createrepo_c as cr

from repotool.announce.plaintext import markdown_to_text, underline
from repotool.errors import AdvisoryError, AdvisoryMismatchError, RecordProblem
from repotool.evr import NEVRA, evr_cmp
from repotool.records.loading import duplicate_advisory_problems
from repotool.records.models import Advisory
from repotool.records.screening import PLACEHOLDER, TEMPLATE_TEXT
from repotool.records.terms import ADVISORY_ID_RE, ADVISORY_TYPES, SEVERITIES

ADVISORY_PREFIX = "PSSA"
#: makes yum and dnf fetch the repository metadata (and so new errata) now
REFRESH_COMMAND = "yum clean expire-cache"
NVD_URL = "https://nvd.nist.gov/vuln/detail/{cve}"


# --- validation against the repository --------------------------------------------


def advisory_problems(
    advisories: Sequence[Advisory],
    repo_packages: Mapping[str, Collection[NEVRA]],
    *,
    unchecked_targets: Collection[str] = (),
) -> list[RecordProblem]:
    """Pure: every way the advisories disagree with the repositories.

    Each fixed package must be in its target's repository with that exact
    NEVRA; each target an advisory names must be a target of ``repo_packages``
    (or of ``unchecked_targets``: real targets whose repository is not at hand,
    whose packages are then not checked); ids must be unique.
    """
    problems = duplicate_advisory_problems(advisories)
    repos = {t: set(pkgs) for t, pkgs in repo_packages.items()}
    known = ", ".join(sorted({*repos, *unchecked_targets})) or "(none)"
    for adv in advisories:
        line = adv.lines.get("packages", 1)
        for target, fixed in adv.packages.items():
            if target in unchecked_targets and target not in repos:
                continue
            if target not in repos:
                problems.append(
                    RecordProblem(
                        adv.source,
                        line,
                        f"packages.{target}",
                        f"'{target}' is not a target of this configuration",
                        f"use one of the configured targets: {known}",
                    )
                )
                continue
            held = repos[target]
            for i, pkg in enumerate(fixed):
                want = pkg.nevra
                if want in held:
                    continue
                same_name = sorted(
                    (n for n in held if n.name == want.name and n.arch == want.arch),
                    key=_by_evr,
                )
                field = f"packages.{target}.{i}"
                if not same_name:
                    problems.append(
                        RecordProblem(
                            adv.source,
                            line,
                            field,
                            f"there is no package {want.name} ({want.arch}) in the "
                            f"{target} repository",
                            _missing_name_fix(want, held),
                        )
                    )
                elif dist := _with_dist_tag(want, same_name):
                    problems.append(
                        RecordProblem(
                            adv.source,
                            line,
                            field,
                            f"{want} is not in the {target} repository: its release "
                            f"lacks the dist tag ({dist.release})",
                            f"write evr: {dist.evr}",
                        )
                    )
                else:
                    have = ", ".join(str(n.evr) for n in same_name)
                    # older than what is held: its spec was replaced instead of archived
                    build_it = (
                        f"keep the spec that built {want.name} {want.evr} under "
                        "specs/<component>/archive/ (specs/README.md, 'Bumping a component')"
                        if evr_cmp(want.evr, same_name[-1].evr) < 0
                        else f"build the fix (update specs/{want.name} to {want.evr})"
                    )
                    problems.append(
                        RecordProblem(
                            adv.source,
                            line,
                            field,
                            f"{want} is not in the {target} repository "
                            f"(it holds {want.name} {have})",
                            f"{build_it}, or correct evr if the fix is one of: {have}",
                        )
                    )
    return problems


def _missing_name_fix(want: NEVRA, held: Collection[NEVRA]) -> str:
    """The fix for a package name the repository does not hold: another arch
    of it, or the names it looks like."""
    arches = sorted({n.arch for n in held if n.name == want.name})
    if arches:
        return f"set arch: {arches[0]} (the repository holds {want.name} for {', '.join(arches)})"
    scored = sorted(
        (
            (difflib.SequenceMatcher(None, want.name, name).ratio(), name)
            for name in {n.name for n in held}
        ),
        reverse=True,
    )
    # the near names only: within a little of the nearest, and not far off at all
    best = scored[0][0] if scored else 1.0
    close = [name for ratio, name in scored if ratio >= max(0.6, best - 0.1)][:3]
    if close:
        return f"did you mean {' or '.join(close)}? correct the name"
    return (
        "correct the name (see specs/), or add the component and build it before "
        "publishing the advisory"
    )


def _with_dist_tag(want: NEVRA, same_name: Sequence[NEVRA]) -> NEVRA | None:
    """The package ``want`` means when its evr left out the dist tag
    (3.3.2-3 for 3.3.2-3.el7), if the repository holds exactly one such."""
    found = [
        n
        for n in same_name
        if (n.epoch, n.version) == (want.epoch, want.version)
        and n.release.startswith(want.release + ".")
        and "-" not in n.release
    ]
    return found[0] if len(found) == 1 else None


def _nevra_evr_cmp(a: NEVRA, b: NEVRA) -> int:
    return evr_cmp(a.evr, b.evr)


#: sort key: oldest first, as rpm orders versions (rpmvercmp)
_by_evr = functools.cmp_to_key(_nevra_evr_cmp)


def check_advisories(
    advisories: Sequence[Advisory], repo_packages: Mapping[str, Collection[NEVRA]]
) -> None:
    """Raise AdvisoryMismatchError listing every problem, or return quietly.

    ``repo_packages``: target -> NEVRAs of that target's repository after the
    publish being prepared.  Call it before anything is swapped into public/.
    """
    problems = advisory_problems(advisories, repo_packages)
    if problems:
        raise AdvisoryMismatchError(problems)


# --- updateinfo ---------------------------------------------------------------------


def _when(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)


def render_updateinfo(
    advisories: Iterable[Advisory],
    target: str,
    packages: Collection[NEVRA],
    *,
    sums: Mapping[NEVRA, str] | None = None,
    product: str = "pS-Performance Toolkit",
    issuer: str = "release@perfsonar.invalid",
    advisory_url: Callable[[Advisory], str] | None = None,
) -> bytes:
    """Pure: the ``updateinfo.xml`` of one target's repository.

    Lists, for each advisory, only the fixed packages that ``packages`` (the
    target's repository) holds; an advisory with none there is left out.
    ``sums`` maps a NEVRA to the SHA-256 of its package file.
    ``advisory_url`` gives the advisory's page on the site (a "self" reference).
    """
    held = set(packages)
    digests = dict(sums or {})
    info = cr.UpdateInfo()
    for adv in sorted(advisories, key=lambda a: a.id):
        present = [n for n in adv.nevras(target) if n in held]
        if not present:
            continue
        info.append(_update_record(adv, target, present, digests, product, issuer, advisory_url))
    xml: str = info.xml_dump()
    return xml.encode("utf-8")


def _update_record(
    adv: Advisory,
    target: str,
    present: Sequence[NEVRA],
    digests: Mapping[NEVRA, str],
    product: str,
    issuer: str,
    advisory_url: Callable[[Advisory], str] | None,
) -> Any:
    sections = adv.sections
    rec = cr.UpdateRecord()
    rec.id = adv.id
    rec.type = adv.type
    rec.fromstr = issuer
    rec.status = "final"
    rec.version = "1"
    rec.title = adv.title
    rec.severity = adv.severity or "None"
    rec.summary = adv.summary or adv.title
    # yum and dnf show the description but not the solution: carry the steps in both,
    # as plain text (a terminal shows Markdown's ``` fences and `quotes` raw)
    rec.description = updateinfo_description(adv)
    rec.solution = markdown_to_text(sections.get("Remediation", ""))
    rec.release = f"{product} {adv.fixed_in}".strip()
    rec.rights = f"Copyright {adv.year} {product}"
    rec.issued_date = _when(adv.issued)
    rec.updated_date = _when(adv.last_updated)
    rec.pushcount = "1"
    rec.reboot_suggested = False
    if advisory_url is not None:
        rec.append_reference(_reference("self", advisory_url(adv), adv.id, adv.title))
    for cve in adv.cves:
        rec.append_reference(_reference("cve", NVD_URL.format(cve=cve), cve, cve))
    for ref in adv.references:
        if any(ref.url == NVD_URL.format(cve=c) for c in adv.cves):
            continue
        rec.append_reference(_reference("other", ref.url, "", ref.title or ref.url))
    col = cr.UpdateCollection()
    col.shortname = f"perfsonar-{target}"
    col.name = f"{product} ({target})"
    for n in present:
        col.append(_collection_package(n, digests.get(n)))
    rec.append_collection(col)
    return rec


def update_commands(adv: Advisory) -> tuple[str, ...]:
    """Pure: what a host runs before the Remediation's own steps: the metadata
    refresh, and the update command unless a Remediation step already gives it."""
    remediation = adv.sections.get("Remediation", "")
    in_steps = any(line.strip() == adv.update_cmd for line in remediation.splitlines())
    return (REFRESH_COMMAND,) if in_steps else (REFRESH_COMMAND, adv.update_cmd)


def updateinfo_description(adv: Advisory) -> str:
    """Pure: the description ``yum/dnf updateinfo info`` prints: plain text sections,
    the update command and the metadata refresh first among the steps."""
    sections = adv.sections
    parts = []
    for name in ("Description", "Impact", "Remediation"):
        if name not in sections:
            continue
        text = markdown_to_text(sections[name])
        if name == "Remediation":
            first = update_commands(adv)
            text = (
                f"First make yum see the new errata{'' if len(first) == 1 else ' and update'}:"
                "\n\n" + "".join(f"    {c}\n" for c in first) + f"\n{text}"
            )
        parts.append(f"{underline(name)}\n\n{text}")
    if adv.cvss is not None:
        parts.append(f"CVSS v3 base score: {adv.cvss.score} ({adv.cvss.rating}), {adv.cvss.vector}")
    return "\n\n".join(parts)


def _reference(kind: str, href: str, ref_id: str, title: str) -> Any:
    ref = cr.UpdateReference()
    ref.type = kind
    ref.href = href
    ref.id = ref_id
    ref.title = title
    return ref


def _collection_package(n: NEVRA, sha256: str | None) -> Any:
    pkg = cr.UpdateCollectionPackage()
    pkg.name = n.name
    pkg.epoch = str(n.epoch)
    pkg.version = n.version
    pkg.release = n.release
    pkg.arch = n.arch
    pkg.filename = n.filename
    pkg.src = f"{n.name}-{n.version}-{n.release}.src.rpm"
    if sha256:
        pkg.sum = sha256
        pkg.sum_type = cr.SHA256
    pkg.reboot_suggested = False
    return pkg


# --- new advisories and listing -----------------------------------------------------


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


# --- reading a published repository (thin shell) ----------------------------------


def read_repo_packages(repo_dir: Path) -> dict[NEVRA, str]:
    """NEVRA -> package checksum of every package in a repository's primary metadata."""
    repomd_path = repo_dir / "repodata" / "repomd.xml"
    try:
        repomd = cr.Repomd(str(repomd_path))
    except (OSError, cr.CreaterepoCError) as e:
        raise AdvisoryError(
            f"cannot read the repository metadata: {e}",
            where=str(repomd_path),
            hint="publish the repository first (repotool publish)",
        ) from e
    primary = next((r for r in repomd.records if r.type == "primary"), None)
    if primary is None:
        raise AdvisoryError(
            "the repository has no primary metadata",
            where=str(repomd_path),
            hint="publish the repository again (repotool publish)",
        )
    out: dict[NEVRA, str] = {}

    def take(pkg: Any) -> None:
        key = NEVRA(pkg.name, int(pkg.epoch or 0), pkg.version, pkg.release, pkg.arch)
        out[key] = pkg.pkgId

    cr.xml_parse_primary(
        str(repo_dir / primary.location_href), pkgcb=take, do_files=False, warningcb=None
    )
    return out
