"""A CSAF document's product tree: the toolkit releases and the fixed RPMs.

Pure: :func:`product_tree` lists, under the vendor, the toolkit releases an
advisory names (``affected_releases`` and ``fixed_in``, each with a CPE) and,
per target, the fixed RPMs (package / EVR / arch, each with a purl).
:func:`toolkit_id` and :func:`rpm_id` are the product ids the vulnerabilities
of :mod:`repotool.csaf.document` refer to.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from repotool.csaf.layout import CsafSettings
from repotool.evr import NEVRA
from repotool.records.fields import FixedPackage
from repotool.records.models import Advisory

Json = dict[str, Any]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_\-.]+", "_", text.lower().replace(" ", "_")).strip("_") or "x"


def toolkit_id(version: str) -> str:
    return f"toolkit-{version}"


def rpm_id(target: str, nevra: NEVRA) -> str:
    return f"{target}:{nevra}"


def _purl(namespace: str, target: str, nevra: NEVRA) -> str:
    def enc(s: str) -> str:
        return quote(s, safe="")

    version = f"{nevra.version}-{nevra.release}"
    qualifiers = [f"arch={enc(nevra.arch)}", f"distro={enc(target)}"]
    if nevra.epoch:
        qualifiers.append(f"epoch={nevra.epoch}")
    return f"pkg:rpm/{enc(namespace)}/{enc(nevra.name)}@{enc(version)}?{'&'.join(qualifiers)}"


def _cpe(settings: CsafSettings, version: str) -> str:
    return f"cpe:2.3:o:{_slug(settings.vendor)}:{_slug(settings.product)}:{version}:*:*:*:*:*:*:*"


def _toolkit_versions(adv: Advisory) -> list[str]:
    out = list(adv.affected_releases)
    if adv.fixed_in and adv.fixed_in not in out:
        out.append(adv.fixed_in)
    return out


def product_tree(adv: Advisory, settings: CsafSettings) -> Json:
    releases = [
        {
            "category": "product_version",
            "name": version,
            "product": {
                "name": f"{settings.product} {version}",
                "product_id": toolkit_id(version),
                "product_identification_helper": {"cpe": _cpe(settings, version)},
            },
        }
        for version in _toolkit_versions(adv)
    ]
    families: list[Json] = []
    for target, pkgs in sorted(adv.packages.items()):
        by_name: dict[str, list[FixedPackage]] = {}
        for pkg in pkgs:
            by_name.setdefault(pkg.name, []).append(pkg)
        if not by_name:
            continue
        names: list[Json] = []
        for name, same in sorted(by_name.items()):
            versions: dict[str, list[Json]] = {}
            for pkg in same:
                nevra = pkg.nevra
                versions.setdefault(str(nevra.evr), []).append(
                    {
                        "category": "architecture",
                        "name": nevra.arch,
                        "product": {
                            "name": f"{nevra} ({target})",
                            "product_id": rpm_id(target, nevra),
                            "product_identification_helper": {
                                "purl": _purl(settings.purl_namespace, target, nevra)
                            },
                        },
                    }
                )
            names.append(
                {
                    "category": "product_name",
                    "name": name,
                    "branches": [
                        {"category": "product_version", "name": evr, "branches": arches}
                        for evr, arches in versions.items()
                    ],
                }
            )
        families.append(
            {
                "category": "product_family",
                "name": f"{settings.product} packages for {target}",
                "branches": names,
            }
        )
    return {
        "branches": [
            {
                "category": "vendor",
                "name": settings.vendor,
                "branches": [
                    {"category": "product_name", "name": settings.product, "branches": releases},
                    *families,
                ],
            }
        ]
    }
