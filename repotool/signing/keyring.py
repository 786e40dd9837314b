"""The shell around :mod:`repotool.signing.lifecycle`: gpg, the state file, public/.

Lists and exports keys with gpg, cross-signs the two keys of a rotation,
reads and writes the rotation state (``<state>/key-rotation.json``), and says
which key files the release package and public/keys/ carry.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import KeyRotationError, KeyUnavailableError
from repotool.process import Runner
from repotool.signing.lifecycle import (
    ROTATION_FILE,
    KeyInfo,
    Rotation,
    package_key_files,
    published_key_files,
    read_key_listing,
    read_rotation,
    repo_gpgkey_names,
    stale_key_files,
)
from repotool.signing.signer import GPG, Signer


def rotation_path(cfg: Config) -> Path:
    return cfg.state / ROTATION_FILE


def load_rotation(cfg: Config) -> Rotation | None:
    path = rotation_path(cfg)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return read_rotation(data, where=str(path))


def save_rotation(cfg: Config, rotation: Rotation | None) -> None:
    path = rotation_path(cfg)
    if rotation is None:
        path.unlink(missing_ok=True)
    else:
        write_atomic(path, rotation.to_json())


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class Keyring:
    """A GNUPGHOME, run through gpg."""

    home: Path
    runner: Runner
    passphrase_args: tuple[str, ...] = ()
    #: the key's agent is forwarded ([key] agent = "forwarded"): never start a local one
    no_autostart: bool = False

    def _argv(self) -> list[str]:
        argv = [GPG, "--homedir", str(self.home), "--batch", "--no-tty"]
        return [*argv, "--no-autostart"] if self.no_autostart else argv

    def listing(self, fingerprints: Sequence[str] = (), *, secret: bool = False) -> str:
        """gpg's colon listing of these keys (every key: none named), as the keyring
        holds them now; empty when it holds none of them."""
        done = self.runner.run(
            [
                *self._argv(),
                "--with-colons",
                "--fixed-list-mode",
                "--list-secret-keys" if secret else "--list-keys",
                *fingerprints,
            ],
            check=False,
            where=f"GNUPGHOME {self.home}",
        )
        return done.stdout.decode("utf-8", "replace")

    def keys(self, fingerprints: Sequence[str] = (), *, secret: bool = False) -> list[KeyInfo]:
        return read_key_listing(self.listing(fingerprints, secret=secret))

    def key(self, fingerprint: str) -> KeyInfo | None:
        return next(
            (k for k in self.keys([fingerprint]) if k.fingerprint == fingerprint.upper()), None
        )

    def has_secret(self, fingerprint: str) -> bool:
        return any(k.fingerprint == fingerprint.upper() for k in self.keys(secret=True))

    def export(self, fingerprint: str, *, minimal: bool) -> bytes:
        """The armored public key; minimal: self-signatures only (as Signer exports it),
        else with the certifications of keys in this keyring (the cross-signatures)."""
        options = "export-minimal" if minimal else "export-clean"
        data = self.runner.run(
            [*self._argv(), "--armor", "--export-options", options, "--export", fingerprint],
            where=f"GNUPGHOME {self.home}",
        ).stdout
        if not data.strip():
            raise KeyUnavailableError(
                f"cannot export the public key {fingerprint}",
                where=f"GNUPGHOME {self.home}",
                hint="import the key there",
            )
        return data

    def import_keys(self, data: bytes, *, where: str) -> None:
        """gpg --import: keys, or a revocation certificate (the key becomes revoked)."""
        done = self.runner.run(
            [*self._argv(), "--import"], input=data, check=False, where=f"GNUPGHOME {self.home}"
        )
        if done.returncode != 0:
            raise KeyRotationError(
                "gpg did not import it: " + done.stderr.decode("utf-8", "replace").strip()[-300:],
                where=where,
                hint="pass the key's own revocation certificate (--revocation FILE)",
            )

    def cross_sign(self, by: str, target: str) -> None:
        """An exportable certification of ``target``'s user ids by ``by`` (kept once)."""
        self.runner.run(
            [
                *self._argv(),
                *self.passphrase_args,
                "--yes",
                "--local-user",
                by,
                "--quick-sign-key",
                target,
            ],
            where=f"GNUPGHOME {self.home}, {by} certifying {target}",
            hint="the key must sign without a prompt (gpg-agent or [key] passphrase_file)",
        )


def keyring_of(signer: Signer) -> Keyring:
    extra: tuple[str, ...] = ()
    if signer.passphrase_file is not None:
        extra = ("--pinentry-mode", "loopback", "--passphrase-file", str(signer.passphrase_file))
    return Keyring(
        signer.gnupghome, signer.runner, extra, no_autostart=signer.agent_socket is not None
    )


@dataclass(frozen=True)
class ReleaseKeys:
    """The key files of one release: in the package, in public/keys/, in the .repo."""

    #: file name → armored key, installed in /etc/pki/rpm-gpg/ by the release package
    package: dict[str, bytes]
    #: file name → armored key, written to public/keys/
    published: dict[str, bytes]
    #: the names the published .repo lists (under keys/), in order
    repo_gpgkeys: list[str]

    @property
    def package_gpgkeys(self) -> list[str]:
        return list(self.package)

    def stale_in(self, keys_dir: Path) -> list[str]:
        """Rotation key files in keys_dir this release does not publish (after retire)."""
        present = [p.name for p in keys_dir.iterdir()] if keys_dir.is_dir() else []
        base = next(iter(self.published))
        return stale_key_files(base, present, list(self.published))


def _check_spec_ships(cfg: Config, rotation: Rotation) -> None:
    """The release package's spec must ship the rotation's new key: a spec that lost
    the change would be built again under a published version and refused later."""
    from repotool.signing.lifecycle import rotation_key_name, spec_rotation_key

    spec = cfg.path(cfg.build.specs_dir) / "perfsonar-release" / "perfsonar-release.spec"
    if not spec.is_file():
        return
    want = rotation_key_name(cfg.key.public_key_name, rotation.new)
    have = spec_rotation_key(spec.read_text(errors="replace"))
    if have != want:
        raise KeyRotationError(
            f"a key rotation to {rotation.new} is under way, but the release package's spec "
            f"ships {have or 'no second key'} instead of {want}",
            where=str(spec),
            hint="restore the spec as 'repotool key rotate' left it (%global rotation_key "
            f"{want}, with its higher Release), e.g. from git",
        )


def release_keys(cfg: Config, signer: Signer) -> ReleaseKeys:
    """Which key files this release ships, from the rotation state (no date enters
    the release package's files: the same build serves before and after a switch)."""
    rotation = load_rotation(cfg)
    base = cfg.key.public_key_name
    if rotation is None:
        own = signer.public_key_armored().encode()
        return ReleaseKeys({base: own}, {base: own, **_revoked_keys(cfg, signer)}, [base])
    _check_spec_ships(cfg, rotation)
    ring = keyring_of(signer)

    def content(fingerprint: str, cross_signed: bool) -> bytes:
        if fingerprint == signer.fingerprint and not cross_signed:
            return signer.public_key_armored().encode()
        return ring.export(fingerprint, minimal=not cross_signed)

    package = {
        f.name: content(f.fingerprint, f.cross_signed)
        for f in package_key_files(base, rotation.old, rotation)
    }
    published = {
        f.name: content(f.fingerprint, f.cross_signed)
        for f in published_key_files(base, signer.fingerprint, rotation)
    }
    published.update(_revoked_keys(cfg, signer))
    return ReleaseKeys(package, published, repo_gpgkey_names(base, rotation))


def revocation_path(cfg: Config, fingerprint: str) -> Path:
    """The revocation certificate of a compromised key, as 'key compromised' kept it."""
    return cfg.state / "revocations" / f"{fingerprint.upper()}.rev"


def _revoked_keys(cfg: Config, signer: Signer) -> dict[str, bytes]:
    """public/keys/ for each compromised key: the key with its revocation, and beside
    it the revocation certificate (``<name>-<ID>`` and ``<name>-<ID>.rev``)."""
    from repotool.signing.lifecycle import rotation_key_name
    from repotool.signing.revocation import compromised, load_removed

    out: dict[str, bytes] = {}
    ring = keyring_of(signer)
    for key in compromised(load_removed(cfg)):
        name = rotation_key_name(cfg.key.public_key_name, key.fingerprint)
        cert = revocation_path(cfg, key.fingerprint)
        try:
            out[name + ".rev"] = cert.read_bytes()
        except OSError as e:
            raise KeyRotationError(
                f"the revocation certificate of the compromised key {key.fingerprint} is "
                f"missing: {e.strerror or e}",
                where=str(cert),
                hint="put it back (gpg keeps one in openpgp-revocs.d/ of the keyring that "
                "made the key): hosts and users need it to learn the key is revoked",
            ) from e
        out[name] = ring.export(key.fingerprint, minimal=False)
    return out


def file_fingerprints(path: Path, runner: Runner) -> list[str]:
    """The primary keys in an armored (or binary) key file, as gpg shows them."""
    with tempfile.TemporaryDirectory(prefix="repotool-show-") as home:
        done = runner.run(
            [
                GPG,
                "--homedir",
                home,
                "--batch",
                "--no-tty",
                "--with-colons",
                "--fixed-list-mode",
                "--show-keys",
                str(path),
            ],
            check=False,
        )
    return [k.fingerprint for k in read_key_listing(done.stdout.decode("utf-8", "replace"))]
