"""The repository's errata: ``updateinfo.xml`` from the advisory records.

Pure functions (values in, values out)::

    render_updateinfo(advisories, target, packages, sums=None, ...) -> bytes
    updateinfo_description(advisory) -> str   # what ``dnf updateinfo info`` prints
    update_commands(advisory) -> tuple[str, ...]  # what a host runs first

The XML is built with createrepo_c's ``UpdateInfo``, as dnf reads it.  Whether
the advisories agree with the repository is :mod:`repotool.records.advisories`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import createrepo_c as cr

from repotool.announce.plaintext import markdown_to_text, underline
from repotool.evr import NEVRA
from repotool.records.models import Advisory

#: makes yum and dnf fetch the repository metadata (and so new errata) now
REFRESH_COMMAND = "yum clean expire-cache"
NVD_URL = "https://nvd.nist.gov/vuln/detail/{cve}"


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
