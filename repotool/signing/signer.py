"""The release key at work: gpg and gpgv run directly, rpmsign for packages.

Every signature is checked with the tool hosts use (``rpmkeys --checksig``,
``gpgv``) against the exact public key that is published.  Which key, and
whether it may be used at all, is decided in :mod:`repotool.signing.release_key`.
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from repotool.errors import (
    BadSignatureError,
    KeyAgentError,
    KeyUnavailableError,
    SigningError,
    ToolFailedError,
)
from repotool.process import Completed, Runner, require_tools
from repotool.signing.agent import NO_AUTOSTART
from repotool.signing.checksig import read_checksig, split_checksig_output
from repotool.signing.key_checks import KeyStrength, read_sign_status, signing_key_strength
from repotool.signing.ledger import VerifiedLedger
from repotool.signing.lifecycle import KeyInfo, read_key_listing
from repotool.signing.rpm_verify import PublishedKeys, Verdict, dearmor, parse_public_keys

GPG = "/usr/bin/gpg"


@dataclass(frozen=True)
class CheckResult:
    path: Path
    ok: bool
    detail: str


class Signer:
    """Signs with one key and verifies against its published public half."""

    def __init__(
        self,
        *,
        gnupghome: Path,
        fingerprint: str,
        runner: Runner,
        passphrase_file: Path | None = None,
        development: bool = False,
        ledger: Path | None = None,
        agent_socket: Path | None = None,
    ) -> None:
        self.gnupghome = gnupghome
        #: the forwarded gpg-agent's socket ([key] agent = "forwarded"): every gpg call
        #: runs with --no-autostart, so a missing forward never starts a local agent
        self.agent_socket = agent_socket
        self._no_autostart = [NO_AUTOSTART] if agent_socket is not None else []
        #: SHA-256 of every file this key's signature was verified on (one per line)
        self.ledger = ledger
        self._ledger = VerifiedLedger(ledger)
        self.fingerprint = fingerprint.upper()
        self.runner = runner
        self.passphrase_file = passphrase_file
        self.development = development
        self._public: str | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._keyring: Path | None = None
        self._rpmdb: Path | None = None
        self._keys: PublishedKeys | None = None

    def _scratch_dir(self) -> Path:
        """A private folder for the published key's keyring and rpm database."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="repotool-verify-")
        return Path(self._scratch.name)

    def published_keyring(self) -> Path:
        """A gpgv keyring holding only the published public key."""
        if self._keyring is None:
            keyring = self._scratch_dir() / "published.gpg"
            # the armor taken off here (what gpg --dearmor does, without running gpg):
            # gpgv reads the bare key packets as its keyring
            keyring.write_bytes(dearmor(self.public_key_armored()))
            self._keyring = keyring
        return self._keyring

    def published_rpmdb(self) -> Path:
        """An rpm database that trusts only the published public key."""
        if self._rpmdb is None:
            db = self._scratch_dir() / "rpmdb"
            db.mkdir()
            keyfile = self._scratch_dir() / "key.asc"
            keyfile.write_text(self.public_key_armored())
            self.runner.run(["rpmkeys", "--dbpath", str(db), "--import", str(keyfile)])
            self._rpmdb = db
        return self._rpmdb

    @property
    def short_id(self) -> str:
        return self.fingerprint[-8:]

    # --- the key ------------------------------------------------------------
    def key_listing(self, *, secret: bool = False) -> str:
        """``gpg --with-colons --list-keys`` (or ``--list-secret-keys``) of this key, as
        the keyring holds it now (empty when it holds no such key)."""
        from repotool.signing.keyring import keyring_of  # it imports this module

        return keyring_of(self).listing([self.fingerprint], secret=secret)

    def listed(self, listing: str) -> list[KeyInfo]:
        """This key (as primary) in a :meth:`key_listing`: one entry, or none."""
        return [k for k in read_key_listing(listing) if k.fingerprint == self.fingerprint]

    def check_usable(self, *, now: float | None = None) -> str:
        """Fail before any work when the key is missing, expired or lacks its secret;
        the key's listing comes back (for :meth:`test_signature` and the expiry
        warning of the same opening: one gpg run, not three)."""
        now = time.time() if now is None else now
        where = f"GNUPGHOME {self.gnupghome}"
        secret = self.listed(self.key_listing(secret=True))
        if not secret and self.agent_socket is not None:
            raise KeyAgentError(
                f"the gpg-agent reached through {self.agent_socket} does not hold the secret "
                f"key {self.fingerprint}",
                where=where,
                hint="import the key on the machine that holds it (or plug in its smartcard), "
                "check that the forwarding goes to that machine's agent-extra-socket, "
                "or fix [key] fingerprint in repotool.toml",
            )
        if not secret:
            raise KeyUnavailableError(
                f"no secret key with fingerprint {self.fingerprint}",
                where=where,
                hint=f"delete the folder {self.gnupghome}: the next run makes a new development key"
                if self.development
                else "import the release key there, or fix [key] fingerprint in repotool.toml",
            )
        listing = self.key_listing()
        public = self.listed(listing)
        key = public[0] if public else secret[0]
        if key.revoked:
            raise KeyUnavailableError(
                f"the signing key {self.fingerprint} is revoked",
                where=where,
                hint="name the current release key in [key] fingerprint",
            )
        if key.expires is not None and key.expires <= now:
            day = time.strftime("%Y-%m-%d", time.gmtime(key.expires))
            raise KeyUnavailableError(
                f"the signing key {self.fingerprint} expired on {day}",
                where=where,
                hint="extend it (gpg --quick-set-expire) or name a new key in repotool.toml",
            )
        if self.passphrase_file is not None and not self.passphrase_file.is_file():
            raise KeyUnavailableError(
                "the passphrase file does not exist",
                where=str(self.passphrase_file),
                hint="create it (mode 0600) or leave passphrase_file empty to use gpg-agent",
            )
        return listing

    def test_signature(self, listing: str | None = None) -> KeyStrength:
        """Sign a short text as the release will (same key, same passphrase route) and
        check it against the published key, before any work; the signing (sub)key's
        strength comes back.  Never prompts: a key that needs a passphrase nobody gave
        fails here, not in rpmsign after the build.  ``listing``: the key's listing
        just taken by :meth:`check_usable` (else it is listed again)."""
        where = f"GNUPGHOME {self.gnupghome}, key {self.fingerprint}"
        text = b"repotool: test signature before any work\n"
        # a forwarded agent's restricted socket refuses to be told the pinentry mode
        never_prompt = (
            [] if self.passphrase_file or self.agent_socket else ["--pinentry-mode", "error"]
        )

        def sign(extra: list[str]) -> tuple[Completed, str]:
            done = self.runner.run(
                [
                    *self._gpg_argv(),
                    *extra,
                    "--status-fd",
                    "2",
                    "--local-user",
                    self.fingerprint,
                    "--digest-algo",
                    "SHA256",
                    "--armor",
                    "--detach-sign",
                    "--output",
                    "-",
                ],
                input=text,
                check=False,
                where=where,
            )
            return done, done.stderr.decode("utf-8", "replace")

        done, status = sign(never_prompt)
        if never_prompt and "[GNUPG:] ERROR set_pinentry_mode" in status:
            # an agent reached through its restricted socket (forwarded from the machine
            # that holds the key) refuses to be told the pinentry mode: a prompt, if the
            # key needs one, shows on that machine
            done, status = sign([])
        pf = str(self.passphrase_file) if self.passphrase_file else None
        outcome = read_sign_status(status, passphrase_file=pf)
        if done.returncode != 0 or outcome.signed_by is None:
            raise KeyUnavailableError(
                outcome.problem or "gpg could not make a test signature",
                where=where,
                hint=outcome.hint,
            )
        self.verify_detached(text, done.stdout)
        if listing is None:
            listing = self.key_listing()
        strength = signing_key_strength(listing, outcome.signed_by)
        if strength is None:
            raise KeyUnavailableError(
                f"the test signature was made by {outcome.signed_by}, which is not part of "
                "the release key",
                where=where,
                hint="name the primary key's fingerprint in [key] fingerprint",
            )
        return strength

    def public_key_armored(self) -> str:
        if self._public is None:
            from repotool.signing.keyring import keyring_of  # it imports this module

            exported = keyring_of(self).export(self.fingerprint, minimal=True)
            text = exported.decode("utf-8", "replace")
            self._public = text if text.endswith("\n") else text + "\n"
        return self._public

    def _passphrase_args(self) -> list[str]:
        if self.passphrase_file is None:
            return []
        return ["--pinentry-mode", "loopback", "--passphrase-file", str(self.passphrase_file)]

    def _gpg_argv(self) -> list[str]:
        """gpg for signing (listings and exports go through the Keyring)."""
        argv = [GPG, "--homedir", str(self.gnupghome), "--batch", "--no-tty", *self._no_autostart]
        return [*argv, *self._passphrase_args()]

    # --- detached and clear signatures --------------------------------------
    def detach_sign(self, data: bytes) -> bytes:
        """An armored detached signature of ``data`` (for repomd.xml, SHA256SUMS)."""
        done = self.runner.run(
            [
                *self._gpg_argv(),
                "--local-user",
                self.fingerprint,
                "--digest-algo",
                "SHA256",
                "--armor",
                "--detach-sign",
                "--output",
                "-",
            ],
            input=data,
            where=f"gpg key {self.fingerprint}",
            hint="check that gpg-agent can use the key (passphrase file or agent)",
        )
        return done.stdout

    def verify_detached(self, data: bytes, signature: bytes) -> None:
        """Check with gpgv against the published key only."""
        with tempfile.TemporaryDirectory(prefix="repotool-gpgv-") as tmp:
            sig = Path(tmp) / "data.asc"
            payload = Path(tmp) / "data"
            sig.write_bytes(signature)
            payload.write_bytes(data)
            done = self.runner.run(
                ["gpgv", "--keyring", str(self.published_keyring()), str(sig), str(payload)],
                check=False,
            )
            if done.returncode != 0:
                raise BadSignatureError(
                    "the detached signature does not verify against the published key",
                    where=f"key {self.fingerprint}",
                    hint=done.stderr.decode("utf-8", "replace").strip(),
                )

    # --- packages -----------------------------------------------------------
    def _rpmsign_argv(self) -> list[str]:
        argv = [
            "rpmsign",
            "--addsign",
            "--define",
            f"_gpg_name {self.fingerprint}",
            "--define",
            f"__gpg {GPG}",
            "--define",
            f"_gpg_path {self.gnupghome}",
            "--define",
            "_gpg_digest_algo sha256",
        ]
        extra = [*self._no_autostart, *self._passphrase_args()]
        if extra:
            argv += ["--define", "_gpg_sign_cmd_extra_args " + " ".join(extra)]
        return argv

    def sign_rpms(self, paths: Sequence[Path], *, jobs: int = 0) -> None:
        """Sign packages in place, in a few parallel rpmsign runs."""
        if not paths:
            return
        require_tools(["rpmsign"])
        jobs = jobs or os.cpu_count() or 1
        chunks = [list(paths[i::jobs]) for i in range(min(jobs, len(paths)))]

        def sign_chunk(chunk: list[Path]) -> None:
            try:
                self.runner.run(
                    [*self._rpmsign_argv(), *map(str, chunk)],
                    env={"GNUPGHOME": str(self.gnupghome)},
                    where=", ".join(p.name for p in chunk[:3]) + (" ..." if len(chunk) > 3 else ""),
                    hint="check that the key signs without a prompt (gpg-agent or passphrase_file)",
                )
            except ToolFailedError as e:
                raise SigningError(e.what, where=e.where, hint=e.hint) from e

        from concurrent.futures import ThreadPoolExecutor  # not on a publish's path

        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            list(pool.map(sign_chunk, chunks))

    def check_rpms(self, paths: Sequence[Path], *, jobs: int = 0) -> list[CheckResult]:
        """``rpmkeys --checksig`` each package against the published key alone.

        Packages are checked in batches (one rpmkeys run per batch) since a
        large repository has thousands of them.
        """
        if not paths:
            return []
        require_tools(["rpmkeys"])
        db = str(self.published_rpmdb())
        batches = [list(paths[i : i + 256]) for i in range(0, len(paths), 256)]

        def check(batch: list[Path]) -> list[CheckResult]:
            done = self.runner.run(
                ["rpmkeys", "--dbpath", db, "--checksig", "-v", *map(str, batch)],
                check=False,
            )
            text = done.stdout.decode("utf-8", "replace")
            errors = done.stderr.decode("utf-8", "replace")
            return [
                CheckResult(path, *read_checksig(block, self.short_id))
                for path, block in zip(
                    batch, split_checksig_output(text, errors, batch), strict=True
                )
            ]

        workers = max(1, min(len(batches), jobs or os.cpu_count() or 1))
        from concurrent.futures import ThreadPoolExecutor  # not on a publish's path

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return [r for rs in pool.map(check, batches) for r in rs]

    def published_keys(self) -> PublishedKeys:
        """The published key's (sub)keys, for the in-process check of the read pass."""
        if self._keys is None:
            try:
                self._keys = parse_public_keys(self.public_key_armored())
            except (ValueError, IndexError, struct.error):
                self._keys = PublishedKeys((), complete=False)  # rpmkeys checks every file
        return self._keys

    def verified_before(self) -> frozenset[str]:
        """SHA-256s of the files whose signatures passed before (the ledger)."""
        return frozenset(self._ledger.known())

    def require_verdicts(
        self, paths: Sequence[Path], sha256s: Sequence[str], verdicts: Sequence[Verdict | None]
    ) -> None:
        """Refuse unless every package passed: the read pass's in-process check
        (:mod:`repotool.signing.rpm_verify`) decided most of them; what it left
        undecided (another key or signature type) goes to ``rpmkeys --checksig``,
        as do files it never checked (``None``).  A file in the ledger passed before."""
        known = self._ledger.known()
        refused: list[CheckResult] = []
        to_rpm: list[tuple[Path, str]] = []
        passed: list[str] = []
        for path, digest, verdict in zip(paths, sha256s, verdicts, strict=True):
            if digest in known:
                continue
            if verdict is None or verdict.ok is None:
                to_rpm.append((path, digest))
            elif verdict.ok:
                passed.append(digest)
            else:
                refused.append(CheckResult(path, False, verdict.detail))
        self._refuse(refused)
        if to_rpm:
            self.require_signed([p for p, _ in to_rpm], [d for _, d in to_rpm])
        self._ledger.remember(passed)

    def _refuse(self, bad: Sequence[CheckResult]) -> None:
        if bad:
            first = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise BadSignatureError(
                f"{first.detail}{more}",
                where=str(first.path),
                hint=f"only packages signed by the release key {self.fingerprint} are published; "
                "remove the file or sign it with 'repotool sign'",
            )

    def require_signed(self, paths: Sequence[Path], sha256s: Sequence[str] | None = None) -> None:
        """Refuse unless every package is signed by this key with good digests.

        With ``sha256s`` (the files' SHA-256, as the repository metadata has
        them anyway), a file whose exact bytes were verified before against
        this key is not checked again.
        """
        todo = list(paths)
        digests: list[str] = []
        if sha256s is not None:
            known = self._ledger.known()
            pairs = [(p, d) for p, d in zip(paths, sha256s, strict=True) if d not in known]
            todo = [p for p, _ in pairs]
            digests = [d for _, d in pairs]
        self._refuse([r for r in self.check_rpms(todo) if not r.ok])
        self._ledger.remember(digests)
