"""Checking a package's signature in-process, in the same pass that reads it.

``rpmkeys --checksig`` reads every file a second time, in another process.  This
module checks what it checks, from the bytes the read pass has anyway:

* the OpenPGP header signature (RSA or Ed25519, v4 signature, SHA-2 hash) in
  the signature header, made by a key of the *published* release key (primary
  or subkey), over the main header's bytes;
* the header's SHA-256 digest from the signature header, when present;
* the payload digest the signed main header names (``PAYLOADDIGEST``), over
  the payload bytes.

Anything of another shape (a DSA key, a v3 or SHA-1 signature, no payload
digest, an OpenPGP packet it cannot parse) is *not decided* here: the caller
hands such files to ``rpmkeys``.  So a file is accepted only on a check as
strong as rpm's, refused on a definite failure, and otherwise left to rpm.
The legacy MD5/SHA-1 digests (weaker than the signed SHA-256 ones) are not
recomputed.  Everything here is pure: bytes and hash states in, values out.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

LEAD_SIZE = 96
HEADER_MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"

# signature header tags
SIGTAG_DSA = 267
SIGTAG_RSA = 268
SIGTAG_SHA256 = 273
SIGTAG_PGP = 1002
SIGTAG_GPG = 1005
# main header tags
TAG_PAYLOADDIGEST = 5092
TAG_PAYLOADDIGESTALGO = 5093

#: rpm's hash numbers (the same as OpenPGP's) → hashlib names; SHA-1 and MD5 are left to rpm
_HASHES = {8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
_CRYPTO_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    8: hashes.SHA256,
    9: hashes.SHA384,
    10: hashes.SHA512,
    11: hashes.SHA224,
}
_ED25519_OID = bytes.fromhex("2b06010401da470f01")
_SIG_TAGS = frozenset({SIGTAG_DSA, SIGTAG_RSA, SIGTAG_SHA256, SIGTAG_PGP, SIGTAG_GPG})
_MAIN_TAGS = frozenset({TAG_PAYLOADDIGEST, TAG_PAYLOADDIGESTALGO})


class FormatError(ValueError):
    """The bytes are not an rpm (or not one this module can read)."""


@dataclass(frozen=True)
class RpmLayout:
    """Where the parts of an rpm lie, from its first bytes."""

    sig_start: int
    sig_end: int  # end of the signature header (without its padding)
    header_start: int  # the main header (its magic included), as rpm signs it
    header_end: int  # where the payload begins


def _header_size(buf: bytes | memoryview, at: int) -> int:
    if buf[at : at + 8] != HEADER_MAGIC:
        raise FormatError(f"no rpm header magic at byte {at}")
    nindex, hsize = struct.unpack_from(">II", buf, at + 8)
    if nindex > 100_000 or hsize > 256 << 20:
        raise FormatError(f"an implausible header at byte {at}")
    return 16 + 16 * int(nindex) + int(hsize)


def layout_needs(buf: bytes | memoryview) -> int:
    """How many leading bytes :func:`read_layout` needs (grows as more is known)."""
    if len(buf) < LEAD_SIZE + 16:
        return LEAD_SIZE + 16
    sig_end = LEAD_SIZE + _header_size(buf, LEAD_SIZE)
    header_start = (sig_end + 7) & ~7
    if len(buf) < header_start + 16:
        return header_start + 16
    return header_start + _header_size(buf, header_start)


def read_layout(buf: bytes | memoryview) -> RpmLayout:
    """Pure: the layout of an rpm from (at least) its first :func:`layout_needs` bytes."""
    if buf[:4] != b"\xed\xab\xee\xdb":
        raise FormatError("no rpm lead (not an rpm file)")
    need = layout_needs(buf)
    if len(buf) < need:
        raise FormatError("the file ends inside its headers")
    sig_end = LEAD_SIZE + _header_size(buf, LEAD_SIZE)
    header_start = (sig_end + 7) & ~7
    return RpmLayout(LEAD_SIZE, sig_end, header_start, need)


def header_entries(
    buf: bytes, start: int, wanted: frozenset[int]
) -> dict[int, tuple[int, int, bytes]]:
    """Pure: tag → (type, count, the bytes from its offset on) for the ``wanted`` tags."""
    nindex, hsize = struct.unpack_from(">II", buf, start + 8)
    data_at = start + 16 + 16 * nindex
    out = {}
    for tag, typ, off, count in struct.iter_unpack(">iIiI", buf[start + 16 : data_at]):
        if tag in wanted and 0 <= off <= hsize:
            out[tag] = (typ, count, buf[data_at + off : data_at + min(hsize, off + 8192)])
    return out


def _string(entry: tuple[int, int, bytes]) -> str:
    typ, _, raw = entry
    if typ not in (6, 8, 9):
        raise FormatError("a string tag of another type")
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def _binary(entry: tuple[int, int, bytes]) -> bytes:
    typ, count, raw = entry
    if typ != 7:
        raise FormatError("a binary tag of another type")
    return raw[:count]


def _int32(entry: tuple[int, int, bytes]) -> int:
    typ, _, raw = entry
    if typ != 4:
        raise FormatError("an integer tag of another type")
    value: int = struct.unpack_from(">I", raw)[0]
    return value


# --- OpenPGP ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    """One (sub)key of the published release key, as numbers a check needs."""

    key_id: bytes  # the low 8 bytes of the v4 fingerprint
    algo: int  # 1 RSA, 22 EdDSA (Ed25519)
    params: tuple[int, int] | bytes  # (n, e) or the 32-byte Ed25519 point


@dataclass(frozen=True)
class PublishedKeys:
    """The published key's (sub)keys; ``complete`` when every key packet was understood
    (only then may an unknown issuer be refused here rather than by rpm)."""

    keys: tuple[PublicKey, ...]
    complete: bool

    def find(self, key_id: bytes) -> PublicKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        first = data[i]
        if not first & 0x80:
            raise FormatError("not an OpenPGP packet")
        if first & 0x40:  # new format
            tag = first & 0x3F
            b0 = data[i + 1]
            if b0 < 192:
                n, i = b0, i + 2
            elif b0 < 224:
                n, i = ((b0 - 192) << 8) + data[i + 2] + 192, i + 3
            elif b0 == 255:
                n, i = struct.unpack_from(">I", data, i + 2)[0], i + 6
            else:
                raise FormatError("a partial-length OpenPGP packet")
        else:
            tag = (first >> 2) & 0x0F
            kind = first & 3
            if kind == 3:
                raise FormatError("an indeterminate-length OpenPGP packet")
            size = 1 << kind
            n = int.from_bytes(data[i + 1 : i + 1 + size], "big")
            i += 1 + size
        if i + n > len(data):
            raise FormatError("an OpenPGP packet runs past the end")
        out.append((tag, data[i : i + n]))
        i += n
    return out


def _mpi(data: bytes, at: int) -> tuple[int, int]:
    bits = struct.unpack_from(">H", data, at)[0]
    n = (bits + 7) // 8
    if at + 2 + n > len(data):
        raise FormatError("an OpenPGP number runs past the end")
    return int.from_bytes(data[at + 2 : at + 2 + n], "big"), at + 2 + n


def dearmor(text: str) -> bytes:
    lines = text.strip().splitlines()
    try:
        begin = next(i for i, line in enumerate(lines) if line.startswith("-----BEGIN PGP"))
        blank = next(i for i in range(begin + 1, len(lines)) if not lines[i].strip())
    except StopIteration as e:
        raise FormatError("not an armored OpenPGP key") from e
    body = []
    for line in lines[blank + 1 :]:
        if line.startswith(("=", "-----END")):
            break
        body.append(line.strip())
    return base64.b64decode("".join(body))


def parse_public_keys(armored: str) -> PublishedKeys:
    """Pure: the (sub)keys of an armored public key block."""
    keys = []
    complete = True
    for tag, body in _packets(dearmor(armored)):
        if tag not in (6, 14):
            continue
        if not body or body[0] != 4:
            complete = False  # a v3/v5/v6 key: rpm decides
            continue
        key_id = hashlib.sha1(b"\x99" + struct.pack(">H", len(body)) + body).digest()[-8:]
        algo = body[5]
        if algo in (1, 3):
            n, at = _mpi(body, 6)
            e, _ = _mpi(body, at)
            keys.append(PublicKey(key_id, 1, (n, e)))
        elif algo == 22 and body[7 : 7 + body[6]] == _ED25519_OID:
            point, _ = _mpi(body, 7 + body[6])
            raw = point.to_bytes(33, "big")
            if raw[0] != 0x40:
                complete = False
                continue
            keys.append(PublicKey(key_id, 22, raw[1:]))
        else:
            complete = False
    return PublishedKeys(tuple(keys), complete)


@dataclass(frozen=True)
class Signature:
    algo: int
    hash_algo: int
    hashed_trailer: bytes  # what is hashed after the data
    left16: bytes
    values: tuple[int, ...]
    issuer: bytes | None


def _subpackets(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        b0 = data[i]
        if b0 < 192:
            n, i = b0, i + 1
        elif b0 < 255:
            n, i = ((b0 - 192) << 8) + data[i + 1] + 192, i + 2
        else:
            n, i = struct.unpack_from(">I", data, i + 1)[0], i + 5
        if n < 1 or i + n > len(data):
            raise FormatError("a damaged signature subpacket")
        out.append((data[i] & 0x7F, data[i + 1 : i + n]))
        i += n
    return out


def parse_signature(blob: bytes) -> Signature | None:
    """Pure: a v4 signature packet; None for a shape this module leaves to rpm."""
    packets = _packets(blob)
    if len(packets) != 1 or packets[0][0] != 2:
        raise FormatError("the signature tag holds no single signature packet")
    body = packets[0][1]
    if len(body) < 6 or body[0] != 4:
        return None
    sig_type, algo, hash_algo = body[1], body[2], body[3]
    if sig_type != 0 or hash_algo not in _HASHES or algo not in (1, 22):
        return None
    hashed_len = struct.unpack_from(">H", body, 4)[0]
    hashed = body[6 : 6 + hashed_len]
    at = 6 + hashed_len
    unhashed_len = struct.unpack_from(">H", body, at)[0]
    unhashed = body[at + 2 : at + 2 + unhashed_len]
    at += 2 + unhashed_len
    left16 = body[at : at + 2]
    at += 2
    values = []
    while at < len(body):
        v, at = _mpi(body, at)
        values.append(v)
    issuer = None
    for kind, value in _subpackets(hashed) + _subpackets(unhashed):
        if kind == 33 and len(value) == 21 and value[0] == 4:
            issuer = value[-8:]
            break
        if kind == 16 and len(value) == 8:
            issuer = value
    head = body[: 6 + hashed_len]
    trailer = head + b"\x04\xff" + struct.pack(">I", len(head))
    return Signature(algo, hash_algo, trailer, left16, tuple(values), issuer)


@functools.lru_cache(maxsize=16)
def _rsa_key(n: int, e: int) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(e, n).public_key()


@functools.lru_cache(maxsize=16)
def _ed25519_key(point: bytes) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(point)


def _signature_holds(sig: Signature, key: PublicKey, digest: bytes) -> bool:
    try:
        if key.algo == 1 and sig.algo == 1 and isinstance(key.params, tuple):
            n, e = key.params
            size = (n.bit_length() + 7) // 8
            if len(sig.values) != 1 or sig.values[0] >= n:
                return False
            _rsa_key(n, e).verify(
                sig.values[0].to_bytes(size, "big"),
                digest,
                padding.PKCS1v15(),
                utils.Prehashed(_CRYPTO_HASHES[sig.hash_algo]()),
            )
            return True
        if key.algo == 22 and sig.algo == 22 and isinstance(key.params, bytes):
            if len(sig.values) != 2 or any(v >= 1 << 256 for v in sig.values):
                return False
            r, s = sig.values
            # OpenPGP's EdDSA signs the hash of the data, not the data
            _ed25519_key(key.params).verify(r.to_bytes(32, "big") + s.to_bytes(32, "big"), digest)
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


# --- one package -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """``ok`` True: signed by the published key with good digests; False: refused
    (``detail`` says why); None: a shape left to ``rpmkeys``."""

    ok: bool | None
    detail: str


@dataclass(frozen=True)
class PendingCheck:
    """What the header says the payload must hash to; the read pass feeds the payload
    to ``payload_hash`` and calls :func:`finish_check`."""

    payload_hash: hashlib._Hash | None
    expected_payload: str
    verdict: Verdict | None  # decided already from the headers (a failure or "to rpm")


def start_check(buf: bytes, layout: RpmLayout, keys: PublishedKeys) -> PendingCheck:
    """Pure: check the header signature and header digest from the headers' bytes;
    the payload digest is then computed over the rest of the file as it is read."""

    def decided(ok: bool | None, detail: str) -> PendingCheck:
        return PendingCheck(None, "", Verdict(ok, detail))

    try:
        sigs = header_entries(buf, layout.sig_start, _SIG_TAGS)
        main = header_entries(buf, layout.header_start, _MAIN_TAGS)
        header = buf[layout.header_start : layout.header_end]
        if (
            SIGTAG_SHA256 in sigs
            and _string(sigs[SIGTAG_SHA256]) != hashlib.sha256(header).hexdigest()
        ):
            return decided(False, "Header SHA256 digest: BAD (the header was changed)")
        # rpm keeps RSA header signatures under one tag, DSA and EdDSA ones under the other
        tag = SIGTAG_RSA if SIGTAG_RSA in sigs else SIGTAG_DSA
        if tag not in sigs:
            if SIGTAG_PGP in sigs or SIGTAG_GPG in sigs:
                return decided(None, "a signature of another kind")
            return decided(False, "the package is not signed")
        sig = parse_signature(_binary(sigs[tag]))
        if sig is None:
            return decided(None, "a signature of another version or hash")
        key = keys.find(sig.issuer) if sig.issuer is not None else None
        if key is None:
            if keys.complete and sig.issuer is not None:
                return decided(
                    False, f"signed by key ID {sig.issuer.hex()}, not by the published key"
                )
            return decided(None, "a signature by a key this check cannot read")
        h = hashlib.new(_HASHES[sig.hash_algo], header)
        h.update(sig.hashed_trailer)
        digest = h.digest()
        if digest[:2] != sig.left16 or not _signature_holds(sig, key, digest):
            return decided(False, f"Header signature, key ID {key.key_id.hex()}: BAD")
        if TAG_PAYLOADDIGEST not in main:
            return decided(None, "no payload digest in the header")
        algo = _int32(main[TAG_PAYLOADDIGESTALGO]) if TAG_PAYLOADDIGESTALGO in main else 8
        if algo not in _HASHES:
            return decided(None, "a payload digest of another algorithm")
        expected = _string(main[TAG_PAYLOADDIGEST])
    except (FormatError, struct.error, IndexError, UnicodeDecodeError) as e:
        return decided(None, f"headers this check cannot read ({e})")
    return PendingCheck(hashlib.new(_HASHES[algo]), expected, None)


def finish_check(pending: PendingCheck) -> Verdict:
    if pending.verdict is not None:
        return pending.verdict
    assert pending.payload_hash is not None
    if pending.payload_hash.hexdigest() != pending.expected_payload:
        return Verdict(False, "Payload digest: BAD (the payload was changed)")
    return Verdict(True, "")
