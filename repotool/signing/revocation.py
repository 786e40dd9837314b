"""Keys hosts must stop trusting: retired and compromised release keys (docs/keys.md).

``<state>/removed-keys.json`` (format 1) lists every key ``repotool key retire``
or ``repotool key compromised`` took out of service::

    {"format": 1, "keys": [{"fingerprint": "<40 hex>", "reason": "retired"|"compromised",
                            "day": "YYYY-MM-DD", "replaced_by": "<40 hex>"}]}

It decides three things:

* the release package's ``%global removed_keys``: the short ids its ``%posttrans``
  removes from the host's rpm database (rpm 4.18 still accepts a package signed by a
  key whose revocation it imported: only a key that is gone is refused);
* public/keys/ keeps each compromised key, with its revocation, beside the revocation
  certificate (``RPM-GPG-KEY-perfsonar-<ID>`` and ``...-<ID>.rev``);
* no publish names a package signed by a compromised key (:func:`refuse_compromised`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import CompromisedKeyError, KeyRotationError, SigningStateError
from repotool.signing.rpm_verify import (
    SIGTAG_DSA,
    SIGTAG_GPG,
    SIGTAG_PGP,
    SIGTAG_RSA,
    FormatError,
    header_entries,
    layout_needs,
    parse_signature,
    read_layout,
)

REMOVED_FILE = "removed-keys.json"
REMOVED_FORMAT = 1
_FPR = re.compile(r"^[0-9A-F]{40}\Z")
_REMOVED_GLOBAL = re.compile(r"^%global\s+removed_keys\s+(.*?)\s*$", re.M)
_ROTATION_GLOBAL = re.compile(r"^%global\s+rotation_key\s+\S+\s*$", re.M)


@dataclass(frozen=True)
class RemovedKey:
    fingerprint: str
    reason: str  # "retired" | "compromised"
    day: dt.date
    replaced_by: str

    @property
    def short_id(self) -> str:
        """As rpm names the key's package: gpg-pubkey-<short id>."""
        return self.fingerprint[-8:].lower()

    def to_json(self) -> dict[str, str]:
        return {
            "fingerprint": self.fingerprint,
            "reason": self.reason,
            "day": self.day.isoformat(),
            "replaced_by": self.replaced_by,
        }


def read_removed(data: bytes, *, where: str) -> list[RemovedKey]:
    """Pure: the state file's bytes → the removed keys; anything else is refused."""
    hint = (
        "the file is written by 'repotool key retire' and 'repotool key compromised'; "
        "restore it from a backup (a lost entry lets hosts keep trusting that key)"
    )
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != REMOVED_FORMAT:
            raise ValueError(f"format {raw.get('format') if isinstance(raw, dict) else None!r}")
        keys = [
            RemovedKey(
                str(k["fingerprint"]).upper(),
                str(k["reason"]),
                dt.date.fromisoformat(str(k["day"])),
                str(k["replaced_by"]).upper(),
            )
            for k in raw["keys"]
        ]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise SigningStateError(
            f"the list of removed keys is not readable (format {REMOVED_FORMAT}): {e}",
            where=where,
            hint=hint,
        ) from e
    for k in keys:
        if not _FPR.match(k.fingerprint) or k.reason not in ("retired", "compromised"):
            raise SigningStateError(
                f"the list of removed keys has a bad entry {k.fingerprint!r} ({k.reason!r})",
                where=where,
                hint=hint,
            )
    return keys


def removed_bytes(keys: Sequence[RemovedKey]) -> bytes:
    data = {"format": REMOVED_FORMAT, "keys": [k.to_json() for k in keys]}
    return (json.dumps(data, indent=2) + "\n").encode()


def removed_path(cfg: Config) -> Path:
    return cfg.state / REMOVED_FILE


def load_removed(cfg: Config) -> list[RemovedKey]:
    path = removed_path(cfg)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return read_removed(data, where=str(path))


def add_removed(cfg: Config, key: RemovedKey) -> list[RemovedKey]:
    """Record ``key`` (once; a compromise outranks an earlier retire)."""
    keys = load_removed(cfg)
    if any(k.fingerprint == key.fingerprint and k.reason == "compromised" for k in keys):
        return keys
    keys = [k for k in keys if k.fingerprint != key.fingerprint]
    keys.append(key)
    write_atomic(removed_path(cfg), removed_bytes(keys))
    return keys


def compromised(keys: Iterable[RemovedKey]) -> list[RemovedKey]:
    return [k for k in keys if k.reason == "compromised"]


# --- the release package's spec ----------------------------------------------------


def spec_removed_keys(text: str) -> list[str]:
    m = _REMOVED_GLOBAL.search(text)
    if m is None or m.group(1) == "%{nil}":
        return []
    return m.group(1).split()


def spec_with_removed_keys(text: str, short_ids: Sequence[str], *, where: str) -> str:
    """Pure: the spec whose ``%global removed_keys`` lists ``short_ids`` (sorted, once)."""
    value = " ".join(sorted({i.lower() for i in short_ids})) or "%{nil}"
    line = f"%global removed_keys {value}"
    if _REMOVED_GLOBAL.search(text):
        return _REMOVED_GLOBAL.sub(line, text, count=1)
    m = _ROTATION_GLOBAL.search(text)
    if m is None:
        raise KeyRotationError(
            "the release package's spec has no '%global removed_keys' (nor '%global "
            "rotation_key') line",
            where=where,
            hint="restore the spec from the repotool repository",
        )
    return text[: m.end()] + "\n" + line + text[m.end() :]


# --- the publish path ----------------------------------------------------------------

_SIG_TAGS = frozenset({SIGTAG_RSA, SIGTAG_DSA, SIGTAG_PGP, SIGTAG_GPG})


def signature_issuers(path: Path) -> set[str]:
    """The key ids (16 hex digits, lower case) of a package's signatures, from its
    headers (an unreadable signature is left out: rpmkeys judges it elsewhere)."""
    with path.open("rb") as f:
        head = f.read(64 << 10)
        while len(head) < (need := layout_needs(head)):
            more = f.read(need - len(head))
            if not more:
                break
            head += more
    out: set[str] = set()
    try:
        layout = read_layout(head)
        for typ, count, raw in header_entries(head, layout.sig_start, _SIG_TAGS).values():
            sig = parse_signature(raw[:count]) if typ == 7 else None
            if sig is not None and sig.issuer is not None:
                out.add(sig.issuer.hex())
    except (FormatError, ValueError, IndexError):
        pass
    return out


def refuse_compromised(cfg: Config, packages: Iterable[tuple[str, Path]]) -> None:
    """Refuse a publish that names a package signed by a compromised key.

    ``packages``: (repository, file) of every package a new generation names."""
    bad = {k.fingerprint[-16:].lower(): k for k in compromised(load_removed(cfg))}
    if not bad:
        return
    for repo, path in packages:
        hit = next((bad[i] for i in signature_issuers(path) if i in bad), None)
        if hit is not None:
            raise CompromisedKeyError(
                f"{path.name} is signed by the compromised key {hit.fingerprint} (marked "
                f"compromised on {hit.day}); hosts must never be offered it again",
                where=f"{path} (repository {repo})",
                hint="re-sign every retained package with the key that signs now: "
                "'repotool key rotate --resign' (or remove the file, or rebuild it with a "
                "higher Release)",
            )
