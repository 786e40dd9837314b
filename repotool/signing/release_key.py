"""The configured release key, opened and checked before any work.

Development mode makes a clearly labelled key in the state folder on first use
and says so on every run; production names a key by fingerprint in a GNUPGHOME
and takes its passphrase from gpg-agent or a file, never from the command line.
"""

from __future__ import annotations

import os
import re
import weakref
from pathlib import Path

from repotool.config import Config
from repotool.errors import (
    KeyRotationError,
    KeyUnavailableError,
    SigningStateError,
    WeakKeyError,
)
from repotool.process import Runner, require_tools
from repotool.report import Reporter
from repotool.signing.agent import check_forwarded_agent
from repotool.signing.key_checks import KeyStrength, weak_key_problem
from repotool.signing.lifecycle import expiry_warning, signing_fingerprint
from repotool.signing.signer import GPG, Signer

DEV_KEY_BANNER = (
    "USING A DEVELOPMENT SIGNING KEY ({fpr}) made on this machine in {home}. "
    "It is fine for trying repotool out; never publish it to real hosts. "
    'For production set [key] mode = "production" with fingerprint and gnupghome.'
)


_FPR = re.compile(r"^[0-9A-Fa-f]{40}\Z")


def _make_dev_key(home: Path, uid: str) -> str:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    import gnupg  # python-gnupg: only the first use of a development key makes one

    gpg = gnupg.GPG(gpgbinary=GPG, gnupghome=str(home))
    spec = gpg.gen_key_input(
        key_type="RSA",
        key_length=3072,
        key_usage="sign",
        name_real=uid.split(" <")[0],
        name_email=uid.split("<")[-1].rstrip(">") if "<" in uid else "dev@localhost",
        no_protection=True,
        expire_date="0",
    )
    key = gpg.gen_key(spec)
    if not key.fingerprint:
        raise KeyUnavailableError(
            f"gpg could not create the development key: {key.stderr.strip()[-300:]}",
            where=str(home),
        )
    (home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").write_text(
        f"{key.fingerprint}\nThis key was made by repotool for local development.\n"
    )
    return str(key.fingerprint)


def _dev_key_fingerprint(marker: Path) -> str:
    """The development key named by its marker file; a damaged marker is an error."""
    try:
        words = marker.read_bytes().split()
    except OSError as e:
        words = []
        reason = e.strerror or str(e)
    else:
        reason = "it is empty" if not words else "it does not start with a key fingerprint"
    if words and _FPR.match(words[0].decode("ascii", "replace")):
        return words[0].decode("ascii")
    raise SigningStateError(
        f"the development key's marker file is damaged: {reason}",
        where=str(marker),
        hint=f"delete the folder {marker.parent}: the next run makes a new development key "
        "(and signs the packages again with it)",
    )


#: the banners each reporter was shown: one command opens the key more than once (the
#: release, then the CSAF writer when it signs documents), the banner shows once
_SHOWN: weakref.WeakKeyDictionary[Reporter, set[str]] = weakref.WeakKeyDictionary()


def _banner_once(reporter: Reporter, banner: str) -> None:
    try:
        shown = _SHOWN.setdefault(reporter, set())
    except TypeError:  # a reporter that cannot be weakly referenced: always shown
        shown = set()
    if banner not in shown:
        shown.add(banner)
        reporter.warn(banner)


def _open_development(cfg: Config, runner: Runner, reporter: Reporter) -> Signer:
    home = cfg.state / "gnupg"
    marker = home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION"
    if marker.exists():
        fpr = _dev_key_fingerprint(marker)
    else:
        reporter.info("Creating a local development signing key (first use) ...")
        fpr = _make_dev_key(home, cfg.key.dev_uid)
    _banner_once(reporter, DEV_KEY_BANNER.format(fpr=fpr, home=home))
    return Signer(
        gnupghome=home,
        fingerprint=fpr,
        runner=runner,
        development=True,
        ledger=cfg.state / "verified" / f"{fpr}.sha256",
    )


def _check_strength(cfg: Config, signer: Signer, strength: KeyStrength, reporter: Reporter) -> None:
    problem = weak_key_problem(strength)
    if problem is None:
        return
    if cfg.key.allow_weak_key:
        reporter.warn(
            f"SIGNING WITH A WEAK KEY ({signer.fingerprint}): {problem}; "
            "[key] allow_weak_key = true lets it sign"
        )
        return
    raise WeakKeyError(
        f"the signing key {signer.fingerprint} is too weak: {problem}",
        where=f"GNUPGHOME {signer.gnupghome}",
        hint="make a new release key (gpg --quick-gen-key '<uid>' rsa4096 sign 2y) and name it "
        "in [key] fingerprint; to sign with this one anyway, set allow_weak_key = true in [key]",
    )


def open_signer(cfg: Config, runner: Runner, reporter: Reporter) -> Signer:
    """The configured release key, checked usable before any work: it exists, is not
    expired or revoked, is at least RSA-3072/Ed25519 (unless allowed), and a test
    signature made exactly as the release signs verifies against the published key.
    In development mode the key is made on first use, in the project's state folder."""
    require_tools(["gpg", "gpgv"])
    if cfg.key.mode == "development":
        signer = _open_development(cfg, runner, reporter)
    else:
        home = cfg.path(cfg.key.gnupghome) if cfg.key.gnupghome else Path.home() / ".gnupg"
        if not home.is_dir():
            raise KeyUnavailableError(
                "the GNUPGHOME folder does not exist",
                where=f"repotool.toml [key] gnupghome = {home}",
                hint="point gnupghome at the keyring that holds the release key",
            )
        pf = cfg.path(cfg.key.passphrase_file) if cfg.key.passphrase_file else None
        sock = None
        if cfg.key.agent == "forwarded":
            # the key is on another machine: its agent must answer here, and no private
            # key file of it may be on this one
            sock = check_forwarded_agent(home, cfg.key.fingerprint.replace(" ", ""), runner)
        signer = Signer(
            gnupghome=home,
            fingerprint=cfg.key.fingerprint.replace(" ", ""),
            runner=runner,
            passphrase_file=pf,
            agent_socket=sock,
            ledger=cfg.state
            / "verified"
            / f"{cfg.key.fingerprint.replace(' ', '').upper()}.sha256",
        )
    signer = _rotated(cfg, signer, reporter)
    check_signer(cfg, signer, reporter)
    return signer


def check_signer(cfg: Config, signer: Signer, reporter: Reporter) -> None:
    """What every command checks of its key before any work (also what
    ``bench/bench_publish.py`` pays, as the CLI does)."""
    listing = signer.check_usable()
    _check_strength(cfg, signer, signer.test_signature(listing), reporter)
    _warn_expiry(cfg, signer, reporter, listing)


def _rotated(cfg: Config, configured: Signer, reporter: Reporter) -> Signer:
    """The configured key, or from a rotation's switch date on the new one."""
    from repotool.signing.keyring import load_rotation, rotation_path, today

    rotation = load_rotation(cfg)
    if rotation is None:
        return configured
    if rotation.new == configured.fingerprint:
        return configured  # production: [key] names the new key already (before 'retire')
    if rotation.old != configured.fingerprint:
        raise KeyRotationError(
            f"the key rotation is from {rotation.old}, but the configured key is "
            f"{configured.fingerprint}",
            where=str(rotation_path(cfg)),
            hint="keep [key] fingerprint at the old key until 'repotool key retire' ends the "
            "rotation ('repotool key status' shows it)",
        )
    fpr = signing_fingerprint(configured.fingerprint, rotation, today())
    if fpr == configured.fingerprint:
        reporter.info(
            f"Key rotation under way: {rotation.old} signs until {rotation.switch_date}, "
            f"then {rotation.new}"
        )
        return configured
    reporter.info(f"Key rotation: signing with the new key {fpr} since {rotation.switch_date}")
    return Signer(
        gnupghome=configured.gnupghome,
        fingerprint=fpr,
        runner=configured.runner,
        passphrase_file=configured.passphrase_file,
        development=configured.development,
        ledger=cfg.state / "verified" / f"{fpr}.sha256",
        agent_socket=configured.agent_socket,
    )


def _warn_expiry(cfg: Config, signer: Signer, reporter: Reporter, listing: str) -> None:
    """``listing``: the key's listing :meth:`Signer.check_usable` just took."""
    import time

    keys = signer.listed(listing)
    if not keys:
        return
    key = keys[0]
    warning = expiry_warning(key, time.time(), cfg.key.expiry_warning_days)
    if warning is not None:
        reporter.warn(warning)
