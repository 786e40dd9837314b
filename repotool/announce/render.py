"""Pure: records in, the subject and plain-text body of an announcement out.

The same records that feed the repository's errata and the site feed the
list, so the three never disagree.  Nothing here reads a file or the clock:
the caller passes the records, the media list (``media.json``, parsed by
:func:`parse_media_list`) and the links.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from repotool.announce.plaintext import WIDTH, fill, format_size, markdown_to_text, underline
from repotool.csaf.layout import csaf_url
from repotool.errors import MediaListMissingError, NothingToAnnounceError
from repotool.media.manifest import ManifestError, MediaManifest, parse_manifest
from repotool.records.models import Advisory, Records, Release, Respin
from repotool.records.terms import RESPIN_VERSION_RE
from repotool.records.updateinfo import update_commands

Kind = Literal["release", "advisory"]


@dataclass(frozen=True)
class Links:
    """Where readers find things: the site's pages, the downloads and the key."""

    #: the site (cfg.site.base_url): /advisories/<ID>/ and /releases/<version>/
    site_url: str
    #: the published tree (cfg.publish.base_url): media and the public key
    download_url: str
    key_name: str
    list_name: str
    product: str

    def advisory(self, advisory_id: str) -> str:
        return f"{self.site_url.rstrip('/')}/advisories/{advisory_id}/"

    def release(self, version: str) -> str:
        """The release page; a respin (3.3.2-2) is a section of its release's page."""
        m = RESPIN_VERSION_RE.match(version)
        base = f"{self.site_url.rstrip('/')}/releases/"
        return f"{base}{m.group(1)}/#respin-{version}" if m else f"{base}{version}/"

    def media(self, version: str, name: str) -> str:
        return f"{self.download_url.rstrip('/')}/releases/{version}/{name}"

    def key(self) -> str:
        return f"{self.download_url.rstrip('/')}/keys/{self.key_name}"


@dataclass(frozen=True)
class Announcement:
    """What one announcement says, before it is signed and addressed."""

    kind: Kind
    ref: str
    subject: str
    text: str


def parse_media_list(data: bytes | str, *, where: str, version: str) -> MediaManifest:
    """Pure: media.json (written by ``repotool media``) of ``version``, parsed.

    Refuses a file for another version and everything the media stage's own
    reader refuses (any image without a 64-digit SHA-256, so a message never
    shows a checksum that was not computed).
    """
    hint = f"rebuild the media with: repotool media build {version}"
    try:
        manifest = parse_manifest(data, where)
    except ManifestError as e:
        raise MediaListMissingError(e.what, where=e.where, hint=hint) from e
    if manifest.version != version:
        raise MediaListMissingError(
            f"the media list is for version {manifest.version!r}, not {version}",
            where=where,
            hint=hint,
        )
    return manifest


# --- finding what to announce -------------------------------------------------------


def find_advisory(records: Records, advisory_id: str, *, where: str) -> Advisory:
    adv = records.advisory(advisory_id)
    if adv is None:
        known = ", ".join(a.id for a in records.advisories) or "none"
        raise NothingToAnnounceError(
            f"there is no advisory {advisory_id}",
            where=f"{where}/advisories/{advisory_id}.md",
            hint=f"known advisories: {known}",
        )
    return adv


def find_release(records: Records, version: str, *, where: str) -> tuple[Release, Respin | None]:
    """The release named by ``version``, and the respin when it names one (3.3.2-2)."""
    m = RESPIN_VERSION_RE.match(version)
    release = records.release(m.group(1) if m else version)
    respin = None
    if release is not None and m:
        respin = next((r for r in release.respins if r.version == version), None)
    if release is None or (m and respin is None):
        known = ", ".join(
            v for r in records.releases for v in (r.version, *(s.version for s in r.respins))
        )
        raise NothingToAnnounceError(
            f"there is no release or respin {version}",
            where=f"{where}/releases/",
            hint=f"known versions: {known or 'none'}",
        )
    return release, respin


# --- rendering ------------------------------------------------------------------------


def _fields(rows: Sequence[tuple[str, str]]) -> str:
    """``Name:  value`` lines, the values aligned and wrapped under themselves."""
    width = max(len(name) for name, _ in rows) + 2
    out = []
    for name, value in rows:
        first = f"{name}:".ljust(width)
        out.append(fill(value, first=first, indent=" " * width))
    return "\n".join(out)


def _footer(links: Links, fingerprint: str) -> str:
    fpr = " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))
    return "\n".join(
        [
            "-- ",
            fill(
                f"This message is signed with the {links.product} release key (PGP/MIME). "
                "Its fingerprint is:"
            ),
            f"  {fpr}",
            "The public key is published at:",
            f"  {links.key()}",
            fill(f"You receive this message as a member of the {links.list_name} list."),
        ]
    )


def _package_lines(adv: Advisory) -> str:
    lines = []
    for target in sorted(adv.packages):
        for pkg in adv.packages[target]:
            lines.append(f"  {target}: {pkg.nevra}")
    return "\n".join(lines)


def _first_commands(adv: Advisory) -> list[str]:
    """yum keeps metadata for hours: the refresh (and the update) before the steps."""
    commands = update_commands(adv)
    lead = "First make yum see the new errata" + (
        ":" if len(commands) == 1 else ", then install the fix:"
    )
    return [fill(lead), "", *(f"    {c}" for c in commands)]


def render_advisory(adv: Advisory, links: Links, fingerprint: str) -> Announcement:
    """The announcement of one advisory: what, who, the exact steps, the links."""
    sev = f" ({adv.severity})" if adv.severity else ""
    kind = {
        "security": "Security advisory",
        "bugfix": "Bug fix advisory",
        "enhancement": "Enhancement advisory",
    }[adv.type]
    subject = f"[{links.list_name}] {adv.id}{sev}: {adv.title}"
    rows: list[tuple[str, str]] = [("Advisory", adv.id), ("Type", adv.type)]
    if adv.severity:
        rows.append(("Severity", adv.severity))
    rows.append(("Issued", adv.issued.isoformat()))
    if adv.last_updated != adv.issued:
        rows.append(("Updated", adv.last_updated.isoformat()))
    if adv.cves:
        rows.append(("CVEs", ", ".join(adv.cves)))
    affected = ", ".join(adv.affected_releases)
    rows.append(("Affected", f"{links.product} {affected}"))
    if adv.fixed_in:
        rows.append(("Fixed in", f"{links.product} {adv.fixed_in}"))
    sections = adv.sections
    parts = [
        f"{links.product} {kind.lower()} {adv.id}",
        "",
        fill(adv.title),
        "",
        _fields(rows),
        "",
        "Full advisory:",
        f"  {links.advisory(adv.id)}",
        *(["CSAF 2.0 document:", csaf_url(links.site_url, adv)] if adv.type == "security" else []),
    ]
    if adv.summary:
        parts += ["", fill(adv.summary)]
    parts += [
        "",
        underline("Who is affected"),
        "",
        fill(f"Hosts running {links.product} {affected}."),
        "",
        markdown_to_text(sections["Impact"]),
        "",
        underline("What changed"),
        "",
        markdown_to_text(sections["Description"]),
        "",
        underline("What to do"),
        "",
        *_first_commands(adv),
        "",
        markdown_to_text(sections["Remediation"]),
        "",
        underline("Fixed packages"),
        "",
        _package_lines(adv),
    ]
    if adv.references:
        parts += ["", underline("References"), ""]
        for ref in adv.references:
            parts.append(fill(ref.title or ref.url, first="- ", indent="  "))
            if ref.title:
                parts.append(f"  {ref.url}")
    parts += ["", _footer(links, fingerprint)]
    return Announcement("advisory", adv.id, subject, _finish(parts))


def _advisory_lines(records: Records, ids: Sequence[str], links: Links) -> list[str]:
    out: list[str] = []
    for aid in ids:
        adv = records.advisory(aid)
        if adv is None:  # load_records already refuses releases naming unknown ids
            continue
        sev = f" ({adv.severity})" if adv.severity else ""
        out.append(fill(f"{adv.id}{sev}: {adv.title}", first="- ", indent="  "))
        out.append(fill(f"affects {', '.join(adv.affected_releases)}", indent="  "))
        out.append(f"  {links.advisory(adv.id)}")
    return out


def _media_lines(version: str, media: MediaManifest | None, links: Links) -> list[str]:
    if media is None:
        return [
            fill(
                f"The live media of {version} are not published yet, so this message "
                "cannot list their names and SHA-256 checksums. They will be at:"
            ),
            f"  {links.media(version, '')}",
        ]
    out = [
        fill(
            f"Download the images and check them against these SHA-256 checksums "
            f"(also in {media.checksums}, signed with the release key in "
            f"{media.signature}):"
        ),
    ]
    for img in media.images:
        size = format_size(img.size)
        label = f" ({img.kind}, {size})" if img.kind else f" ({size})"
        out += ["", fill(f"{img.name}{label}", first="- ", indent="  ")]
        out.append(f"  {links.media(version, img.name)}")
        out += ["  SHA-256:", f"  {img.sha256}"]
    return out


def render_release(
    records: Records,
    version: str,
    media: MediaManifest | None,
    links: Links,
    fingerprint: str,
    *,
    where: str = "web/content",
) -> Announcement:
    """The announcement of a release (3.3.2) or of a respin of its media (3.3.2-2)."""
    release, respin = find_release(records, version, where=where)
    if media is not None and media.version != version:
        raise MediaListMissingError(
            f"the media list is for {media.version}, not {version}",
            where=links.media(media.version, "media.json"),
        )
    title = release.title or f"{links.product} {release.version}"
    if respin is None:
        subject = f"[{links.list_name}] {title} released"
        when = release.date
        intro = release.summary
        notes = markdown_to_text(release.body)
        ids = release.advisories
    else:
        subject = f"[{links.list_name}] {links.product} {respin.version}: new live media"
        when = respin.date
        intro = respin.notes
        notes = ""
        ids = respin.advisories
    parts = [
        f"{links.product} {version}" + (" (a respin of the live media)" if respin else ""),
        "",
        _fields([("Version", version), ("Date", when.isoformat())]),
        "",
        "Release notes:",
        f"  {links.release(version)}",
    ]
    if intro:
        parts += ["", fill(intro)]
    if notes:
        parts += ["", notes]
    if ids:
        parts += ["", underline("Security advisories"), ""]
        parts += _advisory_lines(records, ids, links)
    parts += ["", underline("Live media"), ""]
    parts += _media_lines(version, media, links)
    parts += ["", _footer(links, fingerprint)]
    return Announcement("release", version, subject, _finish(parts))


def _finish(parts: Sequence[str]) -> str:
    text = "\n".join(parts)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.rstrip("\n") + "\n"


def long_lines(text: str) -> list[str]:
    """Lines wider than the announcement width (only unbreakable words may be)."""
    return [ln for ln in text.splitlines() if len(ln) > WIDTH]
