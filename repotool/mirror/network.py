"""``mirror/mirrors.toml``: the mirror network as typed data.

::

    [[mirror]]
    name = "ESnet"                                  # unique, shown on the status page
    url = "https://mirror.example.net/perfsonar/"   # the base of its copy of public/
    region = "US"                                   # ISO 3166 country code (metalink location)
    contact = "mirror-admin@example.net"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from repotool.errors import MirrorError

_REGION = re.compile(r"^[A-Z]{2}\Z")


@dataclass(frozen=True)
class Mirror:
    name: str
    url: str  #: base of the mirror's copy of public/, ends with "/"
    region: str
    contact: str

    def repo_url(self, target: str, arch: str) -> str:
        return f"{self.url}repo/{target}/{arch}/"


def _check_url(url: str, name: str, where: str) -> None:
    """An http(s) base URL with a host that the fetcher can parse, or MirrorError."""
    hint = (
        "give the base URL of the mirror's copy of public/, e.g. "
        "https://mirror.example.net/perfsonar/"
    )
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not 0..65535
    except ValueError as e:
        raise MirrorError(
            f"the url of '{name}' is not a valid URL ({e}): {url!r}", where=where, hint=hint
        ) from None
    if parts.scheme not in ("http", "https"):
        raise MirrorError(f"the url of '{name}' is not http(s): {url!r}", where=where, hint=hint)
    if not parts.hostname:
        raise MirrorError(f"the url of '{name}' names no host: {url!r}", where=where, hint=hint)
    if any(c.isspace() or not c.isprintable() for c in url):
        raise MirrorError(
            f"the url of '{name}' contains a space or control character: {url!r}",
            where=where,
            hint=hint,
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise MirrorError(
            f"the url of '{name}' has a query or fragment: {url!r}", where=where, hint=hint
        )


def parse_mirrors(text: str, source: str) -> tuple[Mirror, ...]:
    """Pure: mirrors.toml text → mirrors, every entry validated."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MirrorError(
            f"not valid TOML: {e}", where=source, hint="fix the syntax at the line named"
        ) from e
    unknown = sorted(set(data) - {"mirror"})
    if unknown:
        raise MirrorError(
            f"unknown table(s): {', '.join(unknown)}",
            where=source,
            hint="list mirrors as [[mirror]] tables",
        )
    entries = data.get("mirror", [])
    if not isinstance(entries, list):
        raise MirrorError("'mirror' must be an array of tables ([[mirror]])", where=source)
    mirrors: list[Mirror] = []
    names: set[str] = set()
    for i, entry in enumerate(entries, 1):
        where = f"{source} [[mirror]] #{i}"
        if not isinstance(entry, dict):
            raise MirrorError("expected a table", where=where)
        fields = {"name", "url", "region", "contact"}
        missing = sorted(fields - set(entry))
        extra = sorted(set(entry) - fields)
        if missing or extra:
            raise MirrorError(
                ("missing: " + ", ".join(missing) if missing else "")
                + ("; " if missing and extra else "")
                + ("unknown: " + ", ".join(extra) if extra else ""),
                where=where,
                hint="each mirror has exactly name, url, region and contact",
            )
        if not all(isinstance(entry[k], str) and entry[k] for k in fields):
            raise MirrorError(
                "name, url, region and contact must be non-empty strings", where=where
            )
        name, url = entry["name"], entry["url"]
        if name in names:
            raise MirrorError(f"the mirror name '{name}' is used twice", where=where)
        names.add(name)
        _check_url(url, name, where)
        region = entry["region"].upper()
        if not _REGION.match(region):
            raise MirrorError(
                f"region '{entry['region']}' of '{name}' is not a two-letter country code",
                where=where,
                hint="e.g. US, DE, BR",
            )
        mirrors.append(
            Mirror(
                name=name,
                url=url if url.endswith("/") else url + "/",
                region=region,
                contact=entry["contact"],
            )
        )
    return tuple(mirrors)


def load_mirrors(path: Path) -> tuple[Mirror, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise MirrorError(
            f"cannot read the mirror list: {e.strerror}",
            where=str(path),
            hint="set [mirror] mirrors_file or pass --mirrors",
        ) from e
    return parse_mirrors(text, str(path))
