"""Where the CSAF documents live and the names and addresses they carry.

Pure: :class:`CsafSettings` (from the configuration: :func:`settings_from_config`),
which advisories are exported (:func:`exported`: the security ones), and each
document's place in the provider tree (``.well-known/csaf/white/<year>/<id>.json``:
:func:`csaf_path`, :func:`csaf_url`) and its timestamps (:func:`csaf_timestamp`).
The document itself is :mod:`repotool.csaf.document`, the provider files around
the documents :mod:`repotool.csaf.provider`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from repotool.config import Config
from repotool.records.models import Advisory

#: where the provider tree lives under the published root
WELL_KNOWN = ".well-known/csaf"
TLP_FOLDER = "white"


@dataclass(frozen=True)
class CsafSettings:
    """Names and addresses a document carries (from the configuration)."""

    #: where public/ is served: the tree is at <base_url>/.well-known/csaf/
    base_url: str
    #: the site with the advisory pages (/advisories/<id>/)
    site_url: str
    publisher_name: str
    contact_details: str
    vendor: str
    product: str
    #: purl namespace of the RPMs (the yum repository id)
    purl_namespace: str
    #: the published release key: its URL and fingerprint (provider metadata)
    key_url: str
    key_fingerprint: str = ""


def settings_from_config(cfg: Config, key_fingerprint: str = "") -> CsafSettings:
    """Pure: the settings a project's configuration gives."""
    site = cfg.site.base_url.rstrip("/")
    return CsafSettings(
        base_url=site,
        site_url=site,
        publisher_name=cfg.product,
        contact_details=cfg.announce.from_address,
        vendor=cfg.build.vendor,
        product=cfg.product,
        purl_namespace=cfg.publish.repo_id,
        key_url=f"{cfg.publish.base_url.rstrip('/')}/keys/{cfg.key.public_key_name}",
        key_fingerprint=key_fingerprint,
    )


def exported(advisories: Sequence[Advisory]) -> list[Advisory]:
    """The advisories that get a CSAF document: the security ones, by id."""
    return sorted((a for a in advisories if a.type == "security"), key=lambda a: a.id)


def csaf_filename(advisory_id: str) -> str:
    """CSAF 2.0 section 5.1: the tracking id in lower case, other characters as '_'."""
    return re.sub(r"[^+\-a-z0-9]+", "_", advisory_id.lower()) + ".json"


def csaf_path(adv: Advisory) -> str:
    """The document's path under the provider folder: white/<initial year>/<file>."""
    return f"{TLP_FOLDER}/{adv.issued.year}/{csaf_filename(adv.id)}"


def csaf_url(base_url: str, adv: Advisory) -> str:
    return f"{base_url.rstrip('/')}/{WELL_KNOWN}/{csaf_path(adv)}"


def csaf_timestamp(day: date) -> str:
    return f"{day.isoformat()}T00:00:00.000Z"
