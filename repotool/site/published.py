"""What the site shows from the published tree (``public/``), read once per change.

Other stages write these files; the site only reads them:

* ``keys/<public_key_name>``: the armored release key (its fingerprint comes
  from gpg, through the :class:`~repotool.site.key_inspection.KeyInspector` seam);
* ``repo/<repo_id>.repo``: the ready-to-use yum repository definition;
* ``repo/<target>/<arch>/repodata``: the release package's NEVRA;
* ``releases/<label>/media.json``: live media (the media stage);
* ``lists/<list>/archive.json`` and ``archive.mbox``: the announcements archive;
* ``mirrors/status.json``: mirror health (the mirror stage).

Every file is optional: a missing one shows as "not published yet".  A file
that is present but broken is a :class:`~repotool.errors.SiteError` naming it.
The parsers (``parse_*``) are pure; :func:`read_published` is the thin shell.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from repotool.announce.archive import parse_index
from repotool.config import Config
from repotool.errors import AnnounceError, PublishedFileError
from repotool.evr import NEVRA, evr_key
from repotool.media.manifest import ManifestError, MediaImage, parse_manifest
from repotool.records.respins import superseded_by as newer_media_of
from repotool.site.key_inspection import KeyInspector, format_fingerprint

RELEASE_PACKAGE = "perfsonar-release"
_LABEL_RE = re.compile(r"^[0-9][0-9A-Za-z.]*(-[0-9]+)?$")
#: the mailing lists the site describes: name suffix -> purpose
LISTS: tuple[tuple[str, str], ...] = (
    (
        "announce",
        "Moderated and low-traffic: one signed message for every release, respin and "
        "security advisory. Every toolkit administrator should be on it.",
    ),
    (
        "user",
        "Open discussion among people who run the toolkit: questions about installation, "
        "measurements, firewalls and tuning, answered by users and developers alike.",
    ),
)


# --- what the pages get ------------------------------------------------------------


@dataclass(frozen=True)
class MediaSet:
    """The live media of one release or respin (``releases/<label>/``)."""

    label: str
    date: str
    images: tuple[MediaImage, ...]
    checksums_url: str
    signature_url: str
    #: the newer media of the same release that replace these ("" if none)
    superseded_by: str = ""
    #: media.json's own superseded_by: built after that newer respin (``--force``), so
    #: they hold the packages published then, not those of ``date``
    built_after: str = ""
    #: the images' SBOM (CycloneDX JSON); None for media made before they had one
    sbom: MediaImage | None = None

    def image_url(self, image: MediaImage) -> str:
        return f"/releases/{self.label}/{image.name}"

    @property
    def superseded_url(self) -> str:
        """The newer media's section of the release page ('' if not superseded)."""
        base, sep, _ = self.superseded_by.partition("-")
        if not self.superseded_by:
            return ""
        return f"/releases/{base}/#respin-{self.superseded_by}" if sep else f"/releases/{base}/"


@dataclass(frozen=True)
class ReleasePackage:
    target: str
    arch: str
    nevra: str
    url: str


@dataclass(frozen=True)
class YumSetup:
    repo_file_url: str
    repo_file_text: str
    key_url: str
    fingerprint: str
    release_packages: tuple[ReleasePackage, ...]


@dataclass(frozen=True)
class ListMessage:
    """One archived announcement: its page (``page``) and its signed .eml (``url``)."""

    message_id: str
    subject: str
    date: str
    kind: str
    ref: str
    url: str
    #: the message's own page, /lists/<list>/<file without .eml>/
    page: str = ""
    sender: str = ""
    #: the text the list members read (the signed text/plain part)
    text: str = ""


@dataclass(frozen=True)
class PackageFile:
    """A package file of a published repository: where it is and its SHA-256."""

    target: str
    arch: str
    url: str
    sha256: str


@dataclass(frozen=True)
class MailingList:
    name: str
    address: str
    purpose: str
    subscribe_address: str
    archive: tuple[ListMessage, ...]
    mbox_url: str


@dataclass(frozen=True)
class Published:
    media: Mapping[str, MediaSet] = field(default_factory=dict)
    yum: YumSetup | None = None
    lists: tuple[MailingList, ...] = ()
    mirrors: tuple[Mapping[str, str], ...] | None = None
    #: when ``repotool mirror check`` wrote status.json (its "generated")
    mirrors_checked: str = ""
    #: (target, NEVRA) -> the files of that package in the target's repositories
    package_files: Mapping[tuple[str, NEVRA], tuple[PackageFile, ...]] = field(default_factory=dict)


# --- pure parsers ------------------------------------------------------------------


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise PublishedFileError(
            f"not valid JSON: {e}", where=where, hint="rerun the stage that writes it"
        ) from e


def parse_media(data: bytes, label: str, where: str) -> MediaSet:
    """Pure: one media.json in (the media stage's own reader), the download table out."""
    try:
        manifest = parse_manifest(data, where)
    except ManifestError as e:
        raise PublishedFileError(e.what, where=e.where, hint="rerun: repotool media build") from e
    return MediaSet(
        label=label,
        date=manifest.date[:10],
        images=manifest.images,
        checksums_url=f"/releases/{label}/{manifest.checksums}",
        signature_url=f"/releases/{label}/{manifest.signature}",
        superseded_by=manifest.superseded_by,
        built_after=manifest.superseded_by,
        sbom=manifest.sbom,
    )


def parse_archive(data: bytes, list_name: str, where: str) -> tuple[ListMessage, ...]:
    """Pure: archive.json in (the announcements' own reader), newest first out.

    That reader refuses an entry whose file is not a plain name beside
    archive.json, so every message shown has a link.
    """
    try:
        entries = parse_index(data, where)
    except AnnounceError as e:
        raise PublishedFileError(e.what, where=e.where, hint=e.hint) from e
    out = [
        ListMessage(
            message_id=e.message_id,
            subject=e.subject,
            date=e.date,
            kind=e.kind,
            ref=e.ref,
            url=f"/lists/{list_name}/{e.file}",
        )
        for e in entries
    ]
    return tuple(sorted(out, key=lambda m: m.date, reverse=True))


def message_text(raw: bytes) -> tuple[str, str]:
    """Pure: (sender, text) of an archived message: the text/plain part that was signed."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    sender = str(msg.get("from", ""))
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.is_attachment():
            try:
                body = part.get_content()
            except (LookupError, ValueError):
                body = part.get_payload(decode=True) or b""
            text = body if isinstance(body, str) else bytes(body).decode("utf-8", "replace")
            return sender, text.replace("\r\n", "\n")
    return sender, ""


def mirror_check_time(data: bytes, where: str) -> str:
    """Pure: status.json's "generated" as 'YYYY-MM-DD HH:MM UTC' ('' when absent)."""
    doc = _json(data, where)
    generated = doc.get("generated") if isinstance(doc, dict) else None
    if not isinstance(generated, str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", generated):
        return ""
    return f"{generated[:10]} {generated[11:16]} UTC"


def parse_mirror_status(data: bytes, where: str) -> tuple[Mapping[str, str], ...]:
    """Pure: status.json in, one row (text values) per mirror out."""
    doc = _json(data, where)
    rows = doc.get("mirrors") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise PublishedFileError(
            "status.json has no 'mirrors' list", where=where, hint="rerun: repotool mirror check"
        )
    out: list[dict[str, str]] = []
    for row in rows:
        if isinstance(row, dict):
            flat = {
                str(k): str(v)
                for k, v in row.items()
                if isinstance(v, str | int | float | bool) or v is None
            }
            repos = row.get("repos")
            if isinstance(repos, dict) and "detail" not in flat:
                # what is wrong, per repository (a fresh one needs no words)
                flat["detail"] = "; ".join(
                    f"{name}: {r['detail']}"
                    for name, r in sorted(repos.items())
                    if isinstance(r, dict) and r.get("status") != "fresh" and r.get("detail")
                )
            out.append(flat)
    return tuple(out)


def list_addresses(announce_address: str, list_name: str) -> tuple[str, str]:
    """(list address, subscription address) of a list beside the announce list."""
    domain = announce_address.partition("@")[2] or "lists.perfsonar.invalid"
    return f"{list_name}@{domain}", f"{list_name}-request@{domain}"


# --- the thin shell ----------------------------------------------------------------


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PublishedFileError(
            f"cannot read the file: {e.strerror}", where=str(path), hint="check its permissions"
        ) from e


def _package_files(cfg: Config, public: Path) -> dict[tuple[str, NEVRA], tuple[PackageFile, ...]]:
    from repotool.errors import AdvisoryError
    from repotool.records.advisories import read_repo_packages

    out: dict[tuple[str, NEVRA], tuple[PackageFile, ...]] = {}
    for target in cfg.targets:
        for arch in target.arches:
            repo_dir = public / "repo" / target.name / arch
            if not (repo_dir / "repodata" / "repomd.xml").is_file():
                continue
            hrefs: dict[NEVRA, str] = {}
            try:
                sums = read_repo_packages(repo_dir, hrefs)
            except AdvisoryError as e:
                raise PublishedFileError(e.what, where=e.where, hint=e.hint) from e
            for n, sha in sums.items():
                url = f"/repo/{target.name}/{arch}/{hrefs.get(n, f'Packages/{n.filename}')}"
                key = (target.name, n)
                out[key] = (*out.get(key, ()), PackageFile(target.name, arch, url, sha))
    return out


def _release_packages(
    cfg: Config, files: Mapping[tuple[str, NEVRA], tuple[PackageFile, ...]]
) -> tuple[ReleasePackage, ...]:
    out: list[ReleasePackage] = []
    for target in cfg.targets:
        for arch in target.arches:
            nevras = [
                n
                for (t, n), fs in files.items()
                if t == target.name and any(f.arch == arch for f in fs)
            ]
            found = [n for n in nevras if n.name == RELEASE_PACKAGE]
            if found:
                newest = max(found, key=lambda n: evr_key(n.evr))
                out.append(
                    ReleasePackage(
                        target=target.name,
                        arch=arch,
                        nevra=str(newest),
                        url=next(f.url for f in files[(target.name, newest)] if f.arch == arch),
                    )
                )
    return tuple(out)


def published_inputs(cfg: Config, public: Path) -> list[Path]:
    """Every file whose change changes what :func:`read_published` returns."""
    paths = [
        public / "keys" / cfg.key.public_key_name,
        public / "repo" / f"{cfg.publish.repo_id}.repo",
        public / "mirrors" / "status.json",
    ]
    for target in cfg.targets:
        for arch in target.arches:
            paths.append(public / "repo" / target.name / arch / "repodata" / "repomd.xml")
    paths.extend(sorted((public / "releases").glob("*/media.json")))
    for list_name in mailing_list_names(cfg):
        paths.append(public / "lists" / list_name / "archive.json")
        paths.append(public / "lists" / list_name / "archive.mbox")
        paths.extend(sorted((public / "lists" / list_name).glob("*.eml")))
    return paths


def mailing_list_names(cfg: Config) -> tuple[str, ...]:
    announce = cfg.announce.list_name
    base = announce.removesuffix("-announce") if announce.endswith("-announce") else "perfsonar"
    return tuple(announce if suffix == "announce" else f"{base}-{suffix}" for suffix, _ in LISTS)


def read_published(cfg: Config, public: Path, keys: KeyInspector) -> Published:
    """Read what the pages show from ``public`` (missing files are simply absent)."""
    media: dict[str, MediaSet] = {}
    for manifest in sorted((public / "releases").glob("*/media.json")):
        label = manifest.parent.name
        data = _read(manifest)
        if data is not None and _LABEL_RE.match(label):
            media[label] = parse_media(data, label, str(manifest))
    # newer media of the same release published since: their label wins over media.json's
    for label, newer in newer_media_of(media).items():
        media[label] = replace(media[label], superseded_by=newer)

    yum: YumSetup | None = None
    key_path = public / "keys" / cfg.key.public_key_name
    repo_path = public / "repo" / f"{cfg.publish.repo_id}.repo"
    key = _read(key_path)
    repo_text = _read(repo_path)
    package_files = _package_files(cfg, public)
    if key is not None and repo_text is not None:
        yum = YumSetup(
            repo_file_url=f"/repo/{repo_path.name}",
            repo_file_text=repo_text.decode("utf-8", "replace"),
            key_url=f"/keys/{key_path.name}",
            fingerprint=format_fingerprint(keys.fingerprint(key)),
            release_packages=_release_packages(cfg, package_files),
        )

    lists: list[MailingList] = []
    for list_name, (_, purpose) in zip(mailing_list_names(cfg), LISTS, strict=True):
        address, subscribe = list_addresses(cfg.announce.list_address, list_name)
        archive_path = public / "lists" / list_name / "archive.json"
        data = _read(archive_path)
        archive = parse_archive(data, list_name, str(archive_path)) if data is not None else ()
        archive = tuple(_with_text(m, public) for m in archive)
        mbox = public / "lists" / list_name / "archive.mbox"
        lists.append(
            MailingList(
                name=list_name,
                address=address,
                purpose=purpose,
                subscribe_address=subscribe,
                archive=archive,
                mbox_url=f"/lists/{list_name}/archive.mbox" if mbox.is_file() else "",
            )
        )

    status_path = public / "mirrors" / "status.json"
    status = _read(status_path)
    mirrors = parse_mirror_status(status, str(status_path)) if status is not None else None
    checked = mirror_check_time(status, str(status_path)) if status is not None else ""
    return Published(
        media=media,
        yum=yum,
        lists=tuple(lists),
        mirrors=mirrors,
        mirrors_checked=checked,
        package_files=package_files,
    )


def _with_text(m: ListMessage, public: Path) -> ListMessage:
    """The message with its page, sender and text (from the .eml beside archive.json)."""
    raw = _read(public / m.url.lstrip("/"))
    sender, text = message_text(raw) if raw is not None else ("", "")
    page = m.url.removesuffix(".eml") + "/" if m.url.endswith(".eml") else ""
    return replace(m, page=page, sender=sender, text=text)


def media_for(published: Published, labels: Sequence[str]) -> tuple[MediaSet, ...]:
    """The media sets of a release and its respins that are published, in order."""
    return tuple(published.media[label] for label in labels if label in published.media)
