"""Pure decisions about a release key: is it strong enough, did the test signature work.

Values in, values out: gpg's ``--with-colons`` listing and ``--status-fd``
lines are read here; running gpg is :class:`repotool.signing.signer.Signer`'s job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

#: OpenPGP public-key algorithm numbers (RFC 4880, RFC 9580)
_RSA = {1, 2, 3}
_DSA = 17
_ECDSA = 19
_EDDSA = 22
_ED25519 = 27
_ED448 = 28
#: elliptic curves at least as strong as RSA-3072
STRONG_CURVES = frozenset(
    {
        "ed25519",
        "ed448",
        "nistp256",
        "nistp384",
        "nistp521",
        "brainpoolP256r1",
        "brainpoolP384r1",
        "brainpoolP512r1",
    }
)
MIN_RSA_BITS = 3072


@dataclass(frozen=True)
class KeyStrength:
    """The (sub)key that makes the signatures: its algorithm number, size and curve."""

    algo: int
    bits: int
    curve: str = ""

    @property
    def name(self) -> str:
        """How people name the key: RSA-3072, DSA-1024, Ed25519."""
        if self.algo in _RSA:
            return f"RSA-{self.bits}"
        if self.algo == _DSA:
            return f"DSA-{self.bits}"
        if self.algo in (_EDDSA, _ED25519, _ED448):
            return {"ed25519": "Ed25519", "ed448": "Ed448"}.get(
                self.curve.lower() or ("ed25519" if self.algo == _ED25519 else "ed448"),
                f"EdDSA ({self.curve})",
            )
        if self.algo == _ECDSA:
            return f"ECDSA ({self.curve})"
        return f"algorithm {self.algo} ({self.bits} bits)"


def weak_key_problem(strength: KeyStrength) -> str | None:
    """Pure: why the key is weaker than RSA-3072/Ed25519, or None when it is not."""
    if strength.algo in _RSA or strength.algo == _DSA:
        if strength.bits >= MIN_RSA_BITS:
            return None
        return f"{strength.name} is weaker than RSA-{MIN_RSA_BITS} or Ed25519"
    if strength.algo in (_ED25519, _ED448):
        return None
    if strength.algo in (_EDDSA, _ECDSA) and strength.curve in STRONG_CURVES:
        return None
    return f"{strength.name} is not known to be as strong as RSA-{MIN_RSA_BITS} or Ed25519"


def signing_key_strength(colons: str, fingerprint: str) -> KeyStrength | None:
    """Pure: the strength of the (sub)key with this fingerprint in a ``--with-colons`` listing."""
    record: list[str] | None = None
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub", "sec", "ssb"):
            record = fields
        elif fields[0] == "fpr" and record is not None and len(fields) > 9:
            if fields[9].upper() == fingerprint.upper():
                curve = record[16] if len(record) > 16 else ""
                return KeyStrength(int(record[3] or 0), int(record[2] or 0), curve)
            record = None
    return None


@dataclass(frozen=True)
class SignOutcome:
    """What a test signature showed: the fingerprint of the (sub)key that signed,
    or why nothing was signed and what to do."""

    signed_by: str | None
    problem: str = ""
    hint: str = ""


#: gpg's error codes in "FAILURE sign <code>": the low 16 bits name the error
_NO_PINENTRY = 85
_BAD_PASSPHRASE = 11


def read_sign_status(status: str, *, passphrase_file: str | None) -> SignOutcome:
    """Pure: read gpg's ``--status-fd`` lines of one ``--detach-sign``."""
    words = [ln.split()[1:] for ln in status.splitlines() if ln.startswith("[GNUPG:] ")]
    by_name: dict[str, list[str]] = {w[0]: w[1:] for w in words if w}
    if "SIG_CREATED" in by_name and len(by_name["SIG_CREATED"]) >= 6:
        return SignOutcome(by_name["SIG_CREATED"][5])
    if "INV_SGNR" in by_name:
        return _unusable(by_name)
    code = int(by_name.get("FAILURE", ["", "0"])[1]) & 0xFFFF
    if code == _NO_PINENTRY:
        return SignOutcome(
            None,
            "the key needs a passphrase and none is configured",
            "name a file holding it in [key] passphrase_file (mode 0600), "
            "or preset it in gpg-agent (gpg-preset-passphrase)",
        )
    if code == _BAD_PASSPHRASE or "BAD_PASSPHRASE" in by_name:
        where = f" in {passphrase_file}" if passphrase_file else ""
        return SignOutcome(
            None,
            f"the passphrase{where} does not unlock the key",
            "put the key's passphrase in the file (one line), or fix [key] passphrase_file",
        )
    gpg_said = [ln for ln in status.splitlines() if ln.startswith("gpg: ")]
    return SignOutcome(
        None,
        "gpg could not make a test signature: " + (gpg_said[-1][5:] if gpg_said else status[-300:]),
        "try: gpg --local-user <fingerprint> --detach-sign on any file, with the same GNUPGHOME",
    )


def _unusable(by_name: dict[str, list[str]]) -> SignOutcome:
    expired = by_name.get("KEYEXPIRED", [])
    if expired and expired[0].isdigit():
        day = time.strftime("%Y-%m-%d", time.gmtime(int(expired[0])))
        return SignOutcome(
            None,
            f"the key has no usable signing key: its signing subkey expired on {day}",
            "extend the subkey (gpg --quick-set-expire <fingerprint> 2y '*') or add a new "
            "one (gpg --quick-add-key <fingerprint> rsa3072 sign), then publish the key again",
        )
    return SignOutcome(
        None,
        "the key has no usable signing key (expired, revoked, or its secret part is missing)",
        "check it with gpg --list-secret-keys; add a signing subkey or name another key",
    )
