"""Pure: an advisory record in, a CSAF 2.0 ``csaf_security_advisory`` out.

Values in, values out: the records (:class:`~repotool.records.models.Advisory`),
the published package NEVRAs per target, and :class:`CsafSettings` (addresses
and names from the configuration).  Nothing reads the clock: every date comes
from the record (``issued`` is the initial release, ``updated`` the current
one), so the same records always give the same bytes (keys sorted).

Only security advisories are exported.  CSAF's security-advisory profile is
built around vulnerabilities (each with notes and a product status); a bug fix
or enhancement erratum has none, and as a ``csaf_security_advisory`` its
products would be referenced nowhere (recommended test 6.2.1 fails).  Those
errata stay in ``updateinfo.xml`` and on the site.

The document: the product tree holds the toolkit releases the advisory names
(``affected_releases`` and ``fixed_in``, with a CPE) and the fixed RPMs per
target (vendor / target / package / EVR / arch, with a purl); one
vulnerability per CVE (or one without a CVE, named by the advisory id) with
the Description as its note, the Impact as its threat, the Remediation as a
``vendor_fix`` for the affected releases, the fixed RPMs as ``fixed`` and
``recommended`` and the fixed release as ``fixed``.  The affected releases are
listed as ``known_affected`` only when the vulnerability has a CVSS score
(recommended test 6.2.3 asks for a score for every affected product, and the
records carry none today); without a score they are named by the remediation
and the threat.

:func:`csaf_problems` lists what the records accept but CSAF does not, each as a
:class:`~repotool.errors.RecordProblem` with the file, line and fix.

This module holds the checks, the document envelope (notes, publisher,
references, tracking) and the vulnerabilities; the product tree is
:mod:`repotool.csaf.products`, the settings and each document's place in the
provider tree :mod:`repotool.csaf.layout`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from repotool.csaf.layout import CsafSettings, csaf_timestamp, csaf_url, exported
from repotool.csaf.products import Json, product_tree, rpm_id, toolkit_id
from repotool.errors import CsafInvalidError, RecordProblem
from repotool.evr import NEVRA
from repotool.records.models import Advisory

TLP_URL = "https://www.first.org/tlp/"
NVD_URL = "https://nvd.nist.gov/vuln/detail/{cve}"
#: the CSAF schema's CVE pattern: ASCII digits only (Python's \d takes any digit)
CSAF_CVE_RE = re.compile(r"^CVE-[0-9]{4}-[0-9]{4,}\Z")
#: the characters RFC 3986 allows in a URI (anything else must be %-encoded)
_URI_CHARS_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z")
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


# --- checks ---------------------------------------------------------------------------


def _problem(adv: Advisory, field: str, what: str, fix: str) -> RecordProblem:
    return RecordProblem(
        adv.source or adv.id, adv.lines.get(field.split(".")[0], 1), field, what, fix
    )


def csaf_problems(
    advisories: Sequence[Advisory], published: Mapping[str, Collection[NEVRA]]
) -> list[RecordProblem]:
    """What would make a security advisory's CSAF document invalid, every problem at once.

    ``published`` maps each target to the NEVRAs its repository holds; a fixed
    package that is not there would be a product nobody can install.
    """
    problems: list[RecordProblem] = []
    for adv in exported(advisories):
        for cve in adv.cves:
            if not CSAF_CVE_RE.match(cve):
                problems.append(
                    _problem(
                        adv,
                        "cves",
                        f"'{cve}' has characters CSAF does not accept in a CVE id "
                        "(only the ASCII digits 0-9)",
                        "retype the CVE id as CVE-<year>-<number> with plain digits",
                    )
                )
        for i, ref in enumerate(adv.references):
            if not _URI_CHARS_RE.match(ref.url) or _BAD_PERCENT_RE.search(ref.url):
                problems.append(
                    _problem(
                        adv,
                        f"references.{i}.url",
                        f"'{ref.url}' is not a URI: it holds characters a URI must percent-encode",
                        "percent-encode them (e.g. 'ü' as %C3%BC, a space as %20)",
                    )
                )
        if adv.fixed_in and adv.fixed_in in adv.affected_releases:
            problems.append(
                _problem(
                    adv,
                    "fixed_in",
                    f"{adv.fixed_in} is listed both as affected and as the release with the fix",
                    "remove it from affected_releases or name the release that fixes it",
                )
            )
        problems.extend(_product_problems(adv, published))
    return problems


def _product_problems(
    adv: Advisory, published: Mapping[str, Collection[NEVRA]]
) -> list[RecordProblem]:
    problems: list[RecordProblem] = []
    known = ", ".join(sorted(published)) or "(none)"
    products = 0
    for target, pkgs in sorted(adv.packages.items()):
        seen: set[NEVRA] = set()
        held = published.get(target)
        if held is None:
            problems.append(
                _problem(
                    adv,
                    f"packages.{target}",
                    f"'{target}' is not a published target (published: {known}), so its "
                    "packages would be products no repository holds",
                    f"use one of {known}, or publish {target} first",
                )
            )
            continue
        for i, pkg in enumerate(pkgs):
            nevra = pkg.nevra
            if nevra in seen:
                problems.append(
                    _problem(
                        adv,
                        f"packages.{target}.{i}",
                        f"{nevra} is listed twice for {target}; CSAF products must be unique",
                        "list each package once",
                    )
                )
                continue
            seen.add(nevra)
            if nevra not in held:
                problems.append(
                    _problem(
                        adv,
                        f"packages.{target}.{i}",
                        f"the product {nevra} is missing: the published {target} "
                        "repository does not hold it",
                        "publish the fixed package (repotool release), or correct name, "
                        "evr and arch to a package the repository holds",
                    )
                )
            else:
                products += 1
    if products == 0 and not problems:
        problems.append(
            _problem(
                adv,
                "packages",
                "no fixed package: the document would have no product with the fix",
                "list the fixed packages per target",
            )
        )
    return problems


def check_exportable(
    advisories: Sequence[Advisory], published: Mapping[str, Collection[NEVRA]]
) -> None:
    """Raise CsafInvalidError listing every problem, or return quietly."""
    problems = csaf_problems(advisories, published)
    if problems:
        raise CsafInvalidError(problems)


# --- the document ----------------------------------------------------------------------


def _revision_history(adv: Advisory) -> list[Json]:
    history = [
        {
            "date": csaf_timestamp(adv.issued),
            "number": "1",
            "summary": "Initial release.",
        }
    ]
    if adv.last_updated != adv.issued:
        history.append(
            {
                "date": csaf_timestamp(adv.last_updated),
                "number": "2",
                "summary": "Updated; the advisory page shows the current text.",
            }
        )
    return history


def _vulnerability(
    adv: Advisory,
    settings: CsafSettings,
    cve: str | None,
    score: Mapping[str, Any] | None,
) -> Json:
    sections = adv.sections
    affected = [toolkit_id(v) for v in adv.affected_releases]
    rpms = [rpm_id(t, p.nevra) for t, pkgs in sorted(adv.packages.items()) for p in pkgs]
    fixed = list(rpms)
    if adv.fixed_in:
        fixed.append(toolkit_id(adv.fixed_in))
    status: Json = {"fixed": fixed, "recommended": rpms}
    page = f"{settings.site_url}/advisories/{adv.id}/"
    vuln: Json = {
        "notes": [
            {"category": "description", "text": sections["Description"], "title": "Description"}
        ],
        "product_status": status,
        "remediations": [
            {
                "category": "vendor_fix",
                "details": sections["Remediation"],
                "product_ids": affected,
                "url": page,
            }
        ],
        "threats": [{"category": "impact", "details": sections["Impact"], "product_ids": affected}],
        "title": adv.title,
    }
    if cve is None:
        vuln["ids"] = [{"system_name": f"{settings.product} advisory", "text": adv.id}]
    else:
        vuln["cve"] = cve
        vuln["references"] = [
            {"category": "external", "summary": f"{cve} in the NVD", "url": NVD_URL.format(cve=cve)}
        ]
    if score is not None:
        status["known_affected"] = affected
        vuln["scores"] = [{"cvss_v3": dict(score), "products": affected}]
    return vuln


def advisory_document(
    adv: Advisory,
    settings: CsafSettings,
    scores: Mapping[str, Mapping[str, Any]] | None = None,
) -> Json:
    """Pure: one security advisory as a CSAF 2.0 document (a JSON-ready dict).

    ``scores`` maps a CVE to its ``cvss_v3`` object (version, vectorString,
    baseScore, baseSeverity) when one is set; the records carry none today.
    """
    scores = scores or {}
    sections = adv.sections
    history = _revision_history(adv)
    references: list[Json] = [
        {
            "category": "self",
            "summary": f"{adv.id} as a CSAF 2.0 document",
            "url": csaf_url(settings.base_url, adv),
        },
        {
            "category": "self",
            "summary": f"{adv.id} on the {settings.product} site",
            "url": f"{settings.site_url}/advisories/{adv.id}/",
        },
    ]
    references += [
        {"category": "external", "summary": ref.title or ref.url, "url": ref.url}
        for ref in adv.references
    ]
    document: Json = {
        "category": "csaf_security_advisory",
        "csaf_version": "2.0",
        "distribution": {"tlp": {"label": "WHITE", "url": TLP_URL}},
        "lang": "en",
        "notes": [
            {"category": "summary", "text": adv.summary or adv.title, "title": "Summary"},
            {"category": "description", "text": sections["Description"], "title": "Description"},
            {"category": "general", "text": sections["Impact"], "title": "Impact"},
        ],
        "publisher": {
            "category": "vendor",
            "contact_details": settings.contact_details,
            "name": settings.publisher_name,
            "namespace": settings.site_url,
        },
        "references": references,
        "title": adv.title,
        "tracking": {
            "current_release_date": csaf_timestamp(adv.last_updated),
            "generator": {"engine": {"name": "repotool"}},
            "id": adv.id,
            "initial_release_date": csaf_timestamp(adv.issued),
            "revision_history": history,
            "status": "final",
            "version": history[-1]["number"],
        },
    }
    if adv.severity:
        document["aggregate_severity"] = {"text": adv.severity}
    cves: list[str | None] = list(adv.cves) or [None]
    return {
        "document": document,
        "product_tree": product_tree(adv, settings),
        "vulnerabilities": [
            _vulnerability(adv, settings, cve, scores.get(cve) if cve else None) for cve in cves
        ],
    }
