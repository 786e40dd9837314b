"""The configured release key, opened and checked before any work.

Development mode makes a clearly labelled key in the state folder on first use
and says so on every run; production names a key by fingerprint in a GNUPGHOME
and takes its passphrase from gpg-agent or a file, never from the command line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import gnupg

from repotool.config import Config
from repotool.errors import KeyUnavailableError
from repotool.process import Runner, require_tools
from repotool.report import Reporter
from repotool.signing.signer import GPG, Signer

DEV_KEY_BANNER = (
    "USING A DEVELOPMENT SIGNING KEY ({fpr}) made on this machine in {home}. "
    "It is fine for trying repotool out; never publish it to real hosts. "
    'For production set [key] mode = "production" with fingerprint and gnupghome.'
)


_FPR = re.compile(r"^[0-9A-Fa-f]{40}$")


def _make_dev_key(home: Path, uid: str) -> str:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
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


def open_signer(cfg: Config, runner: Runner, reporter: Reporter) -> Signer:
    """The configured release key, checked usable; in development mode made on first use."""
    require_tools(["gpg"])
    if cfg.key.mode == "development":
        home = cfg.state / "gnupg"
        marker = home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION"
        if marker.exists():
            fpr = marker.read_text().split()[0]
        else:
            reporter.info("Creating a local development signing key (first use) ...")
            fpr = _make_dev_key(home, cfg.key.dev_uid)
        reporter.warn(DEV_KEY_BANNER.format(fpr=fpr, home=home))
        signer = Signer(
            gnupghome=home,
            fingerprint=fpr,
            runner=runner,
            development=True,
            ledger=cfg.state / "verified" / f"{fpr}.sha256",
        )
    else:
        if not _FPR.match(cfg.key.fingerprint.replace(" ", "")):
            raise KeyUnavailableError(
                f"'{cfg.key.fingerprint}' is not a 40-digit key fingerprint",
                where="repotool.toml [key] fingerprint",
                hint="gpg --list-keys --with-colons shows it on the 'fpr' line",
            )
        home = cfg.path(cfg.key.gnupghome) if cfg.key.gnupghome else Path.home() / ".gnupg"
        if not home.is_dir():
            raise KeyUnavailableError(
                "the GNUPGHOME folder does not exist",
                where=f"repotool.toml [key] gnupghome = {home}",
                hint="point gnupghome at the keyring that holds the release key",
            )
        pf = cfg.path(cfg.key.passphrase_file) if cfg.key.passphrase_file else None
        signer = Signer(
            gnupghome=home,
            fingerprint=cfg.key.fingerprint.replace(" ", ""),
            runner=runner,
            passphrase_file=pf,
            ledger=cfg.state
            / "verified"
            / f"{cfg.key.fingerprint.replace(' ', '').upper()}.sha256",
        )
    signer.check_usable()
    return signer
