"""Detached signatures (repomd.xml.asc, the media's SHA256SUMS.asc) checked with
``gpgv`` against one pinned key.

The key file (armored or binary) is turned into a keyring once with
``gpg --dearmor``; every check is ``gpgv --keyring KEYRING SIG DATA``, the tool
hosts trust, through the process adapter.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from repotool.errors import MirrorError, MirrorIntegrityError
from repotool.process import Runner


class GpgvVerifier:
    """Verifies detached signatures against the key in ``key_file`` only."""

    def __init__(self, key_file: Path, runner: Runner, workdir: Path) -> None:
        self.runner = runner
        self.key_file = key_file
        try:
            key = key_file.read_bytes()
        except OSError as e:
            raise MirrorError(
                f"cannot read the pinned key: {e.strerror}",
                where=str(key_file),
                hint="pass --key with the repository's public key (RPM-GPG-KEY-perfsonar)",
            ) from e
        workdir.mkdir(parents=True, exist_ok=True)
        self.keyring = workdir / "pinned-keyring.gpg"
        if key.lstrip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"):
            done = self.runner.run(
                ["gpg", "--batch", "--homedir", str(workdir), "--dearmor"],
                input=key,
                check=False,
                timeout=60,
                where=str(key_file),
            )
            if done.returncode != 0 or not done.stdout:
                raise MirrorError(
                    "the pinned key is not a readable OpenPGP public key",
                    where=str(key_file),
                    hint="pass the armored public key the project publishes under keys/",
                )
            key = done.stdout
        self.keyring.write_bytes(key)
        self._home = workdir

    def verify(
        self, data: bytes, signature: bytes, where: str, *, name: str = "repomd.xml.asc"
    ) -> None:
        """Raise :class:`MirrorIntegrityError` unless ``signature`` (the file ``name``)
        is a valid signature of ``data`` by the pinned key."""
        with tempfile.TemporaryDirectory(dir=self._home) as tmp:
            data_path = Path(tmp) / "data"
            sig_path = Path(tmp) / "data.asc"
            data_path.write_bytes(data)
            sig_path.write_bytes(signature)
            done = self.runner.run(
                [
                    "gpgv",
                    "--homedir",
                    tmp,
                    "--keyring",
                    str(self.keyring),
                    str(sig_path),
                    str(data_path),
                ],
                check=False,
                timeout=60,
                where=where,
            )
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
            last = detail[-1] if detail else f"gpgv exited with status {done.returncode}"
            raise MirrorIntegrityError(
                f"bad signature: {name} does not verify against the pinned key "
                f"{self.key_file.name} (gpgv: {last})",
                where=where,
                hint="the upstream metadata is tampered with or signed by another key; "
                "nothing was changed; check --key or sync from another upstream",
            )
