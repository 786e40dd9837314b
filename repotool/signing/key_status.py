"""``repotool key status``: the release key(s) and every place hosts learn them from.

The places are read from what is published, as a host would get them: the
files in public/keys/, the ``gpgkey=`` list of the published ``.repo`` file, and
the key files and ``.repo`` inside the newest release package of each repository.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repotool.config import Config
from repotool.errors import KeyUnavailableError
from repotool.evr import evr_cmp, parse_evr
from repotool.process import Runner
from repotool.signing.keyring import Keyring, file_fingerprints, load_rotation, today
from repotool.signing.lifecycle import KeyInfo, Rotation, signing_fingerprint

RELEASE_PACKAGE = "perfsonar-release"
_GPGKEY = re.compile(r"^gpgkey\s*=\s*(.*)$", re.M)


@dataclass
class KeyReport:
    fingerprint: str
    info: KeyInfo | None
    roles: list[str] = field(default_factory=list)
    trusted_in: list[str] = field(default_factory=list)

    def to_json(self, now: float) -> dict[str, Any]:
        info = self.info
        return {
            "fingerprint": self.fingerprint,
            "algorithm": info.algorithm if info else None,
            "uids": list(info.uids) if info else [],
            "created": time.strftime("%Y-%m-%d", time.gmtime(info.created)) if info else None,
            "expires": info.expires_day() if info else None,
            "days_left": info.days_left(now) if info else None,
            "revoked": info.revoked if info else None,
            "roles": self.roles,
            "trusted_in": self.trusted_in,
        }


def configured_key(cfg: Config) -> tuple[Path, str]:
    """The release keyring and the configured key's fingerprint, without using the key."""
    if cfg.key.mode == "development":
        home = cfg.state / "gnupg"
        marker = home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION"
        if not marker.is_file():
            raise KeyUnavailableError(
                "there is no development key yet",
                where=str(marker),
                hint="'repotool release' (or 'repotool sign') makes it on first use",
            )
        words = marker.read_text(errors="replace").split()
        return home, (words[0].upper() if words else "")
    home = cfg.path(cfg.key.gnupghome) if cfg.key.gnupghome else Path.home() / ".gnupg"
    return home, cfg.key.fingerprint.replace(" ", "").upper()


def _gpgkey_names(repo_text: str) -> list[str]:
    names: list[str] = []
    for m in _GPGKEY.finditer(repo_text):
        names += [url.rstrip("/").rpartition("/")[2] for url in m.group(1).split()]
    return names


def _newest_release_package(packages: Path, runner: Runner) -> Path | None:
    best: tuple[Path, str] | None = None
    for rpm in sorted(packages.glob(f"{RELEASE_PACKAGE}-[0-9]*.rpm")):
        evr = runner.run(
            ["rpm", "-qp", "--nosignature", "--qf", "%{EPOCHNUM}:%{VERSION}-%{RELEASE}", rpm],
            check=False,
        ).text
        order = 1 if best is None else evr_cmp(parse_evr(evr), parse_evr(best[1]))
        # the same build re-signed ('key rotate --resign'): the file as first published,
        # signed by the key a host that missed the rotation's first phase trusts
        if order > 0 or (order == 0 and best is not None and ".key-" in best[0].name):
            best = (rpm, evr)
    return best[0] if best else None


def _stranded_fix(cfg: Config, target: str, arch: str, rpm: Path) -> str:
    """The one command that mends a host that missed a rotation's release package."""
    url = f"{cfg.publish.base_url.rstrip('/')}/repo/{target}/{arch}/Packages/{rpm.name}"
    return f"dnf install --disablerepo={cfg.publish.repo_id} --setopt=localpkg_gpgcheck=1 {url}"


def _package_places(cfg: Config, runner: Runner, fixes: list[str]) -> dict[str, list[str]]:
    """fingerprint → places inside the newest release package of each repository
    (and, in ``fixes``, the command that installs that package by hand)."""
    places: dict[str, list[str]] = {}
    for target in cfg.targets:
        for arch in target.arches:
            rpm = _newest_release_package(
                cfg.public_dir / "repo" / target.name / arch / "Packages", runner
            )
            if rpm is None:
                continue
            with tempfile.TemporaryDirectory(prefix="repotool-keys-") as tmp:
                _unpack(rpm, Path(tmp), runner)
                fixes.append(_stranded_fix(cfg, target.name, arch, rpm))
                keydir = Path(tmp) / "etc/pki/rpm-gpg"
                by_name: dict[str, list[str]] = {}
                for key in sorted(keydir.glob("*")) if keydir.is_dir() else []:
                    by_name[key.name] = file_fingerprints(key, runner)
                    for fpr in by_name[key.name]:
                        places.setdefault(fpr, []).append(
                            f"release package {rpm.name} (/etc/pki/rpm-gpg/{key.name})"
                        )
                for repo in sorted((Path(tmp) / "etc/yum.repos.d").glob("*.repo")):
                    for name in _gpgkey_names(repo.read_text(errors="replace")):
                        for fpr in by_name.get(name, []):
                            places.setdefault(fpr, []).append(
                                f"release package {rpm.name} ({repo.name} gpgkey=)"
                            )
    return places


def _unpack(rpm: Path, dest: Path, runner: Runner) -> None:
    """The package's files under dest, as installing it would lay them out."""
    archive = runner.run(["rpm2cpio", str(rpm)], where=str(rpm)).stdout
    runner.run(
        ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
        cwd=dest,
        input=archive,
        where=str(rpm),
    )


def _published_places(cfg: Config, runner: Runner) -> dict[str, list[str]]:
    places: dict[str, list[str]] = {}
    keys_dir = cfg.public_dir / "keys"
    by_name: dict[str, list[str]] = {}
    for key in sorted(keys_dir.glob("*")) if keys_dir.is_dir() else []:
        if key.is_file() and not key.name.startswith("."):
            by_name[key.name] = file_fingerprints(key, runner)
            for fpr in by_name[key.name]:
                places.setdefault(fpr, []).append(f"public/keys/{key.name}")
    repo = cfg.public_dir / "repo" / f"{cfg.publish.repo_id}.repo"
    if repo.is_file():
        for name in _gpgkey_names(repo.read_text(errors="replace")):
            for fpr in by_name.get(name, []):
                places.setdefault(fpr, []).append(f"public/repo/{repo.name} gpgkey= ({name})")
    return places


@dataclass(frozen=True)
class KeyStatus:
    keys: list[KeyReport]
    rotation: Rotation | None
    signing: str
    warnings: list[str]
    #: during a rotation: what mends a host that missed the release package with both keys
    stranded_fixes: list[str] = field(default_factory=list)

    def to_json(self, now: float) -> dict[str, Any]:
        rot = self.rotation
        return {
            "signing": self.signing,
            "keys": [k.to_json(now) for k in self.keys],
            "rotation": None
            if rot is None
            else {
                "old": rot.old,
                "new": rot.new,
                "switch_date": rot.switch_date.isoformat(),
                "started": rot.started.isoformat(),
                "switched": rot.switched(today()),
            },
            "warnings": self.warnings,
            "stranded_host_fix": self.stranded_fixes,
        }

    def summary(self, now: float) -> str:
        lines: list[str] = []
        for k in self.keys:
            info = k.info
            what = (
                f"{info.algorithm}, created "
                f"{time.strftime('%Y-%m-%d', time.gmtime(info.created))}, expires "
                f"{info.expires_day()}"
                + ("" if info.expires is None else f" ({info.days_left(now)} days left)")
                + (", REVOKED" if info.revoked else "")
                if info
                else "not in the release keyring"
            )
            lines.append(f"{k.fingerprint}  {what}")
            if k.roles:
                lines.append(f"    role: {', '.join(k.roles)}")
            if info and info.uids:
                lines.append(f"    uid: {info.uids[0]}")
            lines += [f"    trusted in: {p}" for p in k.trusted_in] or [
                "    trusted in: nothing published"
            ]
        rot = self.rotation
        if rot is not None:
            state = "switched: the new key signs" if rot.switched(today()) else "the old key signs"
            lines.append(
                f"Rotation {rot.old[-8:]} -> {rot.new[-8:]} started {rot.started}, switch on "
                f"{rot.switch_date} ({state})"
            )
            if self.stranded_fixes:
                lines.append(
                    "A host that missed the release package with both keys (its dnf says "
                    "'repomd.xml GPG signature verification error') is mended by one command:"
                )
                lines += [f"    {fix}" for fix in self.stranded_fixes]
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def key_status(cfg: Config, runner: Runner, *, now: float | None = None) -> KeyStatus:
    from repotool.signing.lifecycle import expiry_warning

    now = time.time() if now is None else now
    home, configured = configured_key(cfg)
    ring = Keyring(home, runner)
    rotation = load_rotation(cfg)
    signing = signing_fingerprint(configured, rotation, today())
    reports: dict[str, KeyReport] = {}

    def report(fpr: str) -> KeyReport:
        if fpr not in reports:
            reports[fpr] = KeyReport(fpr, ring.key(fpr))
        return reports[fpr]

    report(signing).roles.append("signs now")
    if rotation is not None:
        report(rotation.old).roles.append(
            f"old key of the rotation (signs until {rotation.switch_date})"
        )
        report(rotation.new).roles.append(
            f"new key of the rotation (signs from {rotation.switch_date})"
        )
    from repotool.signing.revocation import load_removed

    for removed in load_removed(cfg):
        report(removed.fingerprint).roles.append(
            f"{removed.reason} on {removed.day}, replaced by {removed.replaced_by}"
            + (" (revoked)" if removed.reason == "compromised" else "")
            + "; the release package removes it from hosts' rpm databases"
        )
    fixes: list[str] = []
    for places in (_published_places(cfg, runner), _package_places(cfg, runner, fixes)):
        for fpr, where in places.items():
            report(fpr).trusted_in += where
    warnings = []
    info = reports[signing].info
    if info is not None:
        warning = expiry_warning(info, now, cfg.key.expiry_warning_days)
        if warning:
            warnings.append(warning)
    return KeyStatus(list(reports.values()), rotation, signing, warnings, fixes if rotation else [])
