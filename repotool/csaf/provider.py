"""Pure: the CSAF provider tree (CSAF 2.0 section 7) as files, bytes in memory.

::

    provider-metadata.json              role csaf_trusted_provider, the ROLIE feed, the key
    white/csaf-feed-tlp-white.json      ROLIE feed: every document with its hash and signature
    white/index.txt                     every document, one path a line
    white/changes.csv                   every document with its current release, newest first
    white/<year>/<id>.json              the documents (year of the initial release)
    white/<year>/<id>.json.sha256       "<hex>  <file name>"
    white/<year>/<id>.json.sha512
    white/<year>/<id>.json.asc          detached signature (made by the writer, not here)

Every date comes from the records; ``provider-metadata.json``'s
``last_updated`` and the feed's ``updated`` are the newest document's current
release, so the same records give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repotool.csaf.document import advisory_document, check_exportable
from repotool.csaf.layout import (
    TLP_FOLDER,
    WELL_KNOWN,
    CsafSettings,
    csaf_path,
    csaf_timestamp,
    exported,
)
from repotool.evr import NEVRA
from repotool.records.models import Advisory

FEED_NAME = f"csaf-feed-tlp-{TLP_FOLDER}.json"
CSAF_SCHEMA_URL = "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json"


def dump_json(data: Any) -> bytes:
    """Stable bytes: keys sorted, two-space indent, UTF-8, a final newline."""
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class CsafDocument:
    advisory_id: str
    #: relative to the provider folder, e.g. white/2014/pssa-2014-0001.json
    path: str
    data: bytes
    initial_release_date: str
    current_release_date: str


@dataclass(frozen=True)
class ProviderTree:
    """Every file of the provider folder except the signatures."""

    documents: tuple[CsafDocument, ...]
    #: relative path -> bytes (hash files, index.txt, changes.csv, feed, metadata)
    files: Mapping[str, bytes]

    def all_files(self) -> dict[str, bytes]:
        out = {d.path: d.data for d in self.documents}
        out.update(self.files)
        return out


def _url(settings: CsafSettings, rel: str) -> str:
    return f"{settings.base_url.rstrip('/')}/{WELL_KNOWN}/{rel}"


def _feed(settings: CsafSettings, docs: Sequence[CsafDocument], titles: Mapping[str, str]) -> Any:
    entries = []
    for d in sorted(docs, key=lambda d: (d.current_release_date, d.advisory_id), reverse=True):
        url = _url(settings, d.path)
        entries.append(
            {
                "content": {"src": url, "type": "application/json"},
                "format": {"schema": CSAF_SCHEMA_URL, "version": "2.0"},
                "id": d.advisory_id,
                "link": [
                    {"href": url, "rel": "self"},
                    {"href": url + ".sha256", "rel": "hash"},
                    {"href": url + ".sha512", "rel": "hash"},
                    {"href": url + ".asc", "rel": "signature"},
                ],
                "published": d.initial_release_date,
                "summary": {"content": titles[d.advisory_id]},
                "title": titles[d.advisory_id],
                "updated": d.current_release_date,
            }
        )
    return {
        "feed": {
            "category": [
                {"scheme": "urn:ietf:params:rolie:category:information-type", "term": "csaf"}
            ],
            "entry": entries,
            "id": f"{settings.purl_namespace}-csaf-feed-tlp-{TLP_FOLDER}",
            "link": [{"href": _url(settings, f"{TLP_FOLDER}/{FEED_NAME}"), "rel": "self"}],
            "title": f"{settings.product} CSAF feed (TLP:WHITE)",
            "updated": _newest(docs),
        }
    }


def _newest(docs: Sequence[CsafDocument]) -> str:
    return max((d.current_release_date for d in docs), default="1970-01-01T00:00:00.000Z")


def provider_metadata(settings: CsafSettings, docs: Sequence[CsafDocument]) -> Any:
    """Pure: ``provider-metadata.json`` of a trusted provider with one TLP:WHITE feed."""
    meta: dict[str, Any] = {
        "canonical_url": _url(settings, "provider-metadata.json"),
        "distributions": [
            {
                "rolie": {
                    "feeds": [
                        {
                            "summary": f"Every TLP:WHITE security advisory of {settings.product}.",
                            "tlp_label": "WHITE",
                            "url": _url(settings, f"{TLP_FOLDER}/{FEED_NAME}"),
                        }
                    ]
                }
            }
        ],
        "last_updated": _newest(docs),
        "list_on_CSAF_aggregators": True,
        "metadata_version": "2.0",
        "mirror_on_CSAF_aggregators": True,
        "publisher": {
            "category": "vendor",
            "contact_details": settings.contact_details,
            "name": settings.publisher_name,
            "namespace": settings.site_url,
        },
        "role": "csaf_trusted_provider",
    }
    if settings.key_fingerprint:
        meta["public_openpgp_keys"] = [
            {"fingerprint": settings.key_fingerprint.upper(), "url": settings.key_url}
        ]
    return meta


def plan_documents(
    advisories: Sequence[Advisory],
    published: Mapping[str, Collection[NEVRA]],
    settings: CsafSettings,
    scores: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[CsafDocument, ...]:
    """Every security advisory's document; raises CsafInvalidError first if one would
    be invalid (nothing is made then)."""
    check_exportable(advisories, published)
    out = []
    for adv in exported(advisories):
        out.append(
            CsafDocument(
                advisory_id=adv.id,
                path=csaf_path(adv),
                data=dump_json(advisory_document(adv, settings, scores)),
                initial_release_date=csaf_timestamp(adv.issued),
                current_release_date=csaf_timestamp(adv.last_updated),
            )
        )
    return tuple(out)


def plan_tree(
    advisories: Sequence[Advisory],
    published: Mapping[str, Collection[NEVRA]],
    settings: CsafSettings,
    scores: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProviderTree:
    """Pure: the whole provider folder but the signatures."""
    docs = plan_documents(advisories, published, settings, scores)
    titles = {a.id: a.title for a in advisories}
    files: dict[str, bytes] = {}
    for d in docs:
        name = d.path.rsplit("/", 1)[-1]
        files[d.path + ".sha256"] = f"{hashlib.sha256(d.data).hexdigest()}  {name}\n".encode()
        files[d.path + ".sha512"] = f"{hashlib.sha512(d.data).hexdigest()}  {name}\n".encode()
    in_folder = [d.path.removeprefix(f"{TLP_FOLDER}/") for d in docs]
    files[f"{TLP_FOLDER}/index.txt"] = "".join(p + "\n" for p in sorted(in_folder)).encode()
    by_change = sorted(docs, key=lambda d: (d.current_release_date, d.path), reverse=True)
    files[f"{TLP_FOLDER}/changes.csv"] = "".join(
        f'"{d.path.removeprefix(f"{TLP_FOLDER}/")}","{d.current_release_date}"\n' for d in by_change
    ).encode()
    files[f"{TLP_FOLDER}/{FEED_NAME}"] = dump_json(_feed(settings, docs, titles))
    files["provider-metadata.json"] = dump_json(provider_metadata(settings, docs))
    return ProviderTree(docs, files)
