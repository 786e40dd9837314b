"""PGP/MIME (RFC 3156) messages: the exact bytes that are signed and sent.

The message is built as bytes, not through a generator that might re-fold or
re-encode the signed part after it was signed.  The signed part is
``text/plain; charset=utf-8`` in quoted-printable (RFC 3156 asks for 7-bit
data, with trailing white space and ``From `` at a line start encoded, so no
mail system or mbox file changes it).  Its canonical CRLF bytes are what the
release key signs; the detached signature follows as
``application/pgp-signature``.

Building is pure given a :class:`DetachedSigner` (``repotool.signing.signer.Signer``
is one); :func:`signed_parts` takes a message apart again, for checking.
"""

from __future__ import annotations

import quopri
import re
from collections.abc import Sequence
from typing import Protocol

from repotool.announce.headers import header_lines
from repotool.errors import AnnounceError

CRLF = b"\r\n"
PREAMBLE = b"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)"


class DetachedSigner(Protocol):
    def detach_sign(self, data: bytes) -> bytes:
        """An ASCII-armored detached signature of ``data``."""
        ...


def signed_part(text: str) -> bytes:
    """Pure: the inner MIME part (headers, blank line, body) in canonical CRLF form."""
    body = text.replace("\r\n", "\n").encode("utf-8")
    encoded = quopri.encodestring(body, quotetabs=False)
    lines = encoded.split(b"\n")
    # "From " at a line start would be changed to ">From " by mbox files
    lines = [b"=46rom " + ln[5:] if ln.startswith(b"From ") else ln for ln in lines]
    if lines and lines[-1] == b"":
        lines.pop()
    headers = [
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Disposition: inline",
    ]
    return CRLF.join(headers) + CRLF + CRLF + CRLF.join(lines) + CRLF


def assemble(
    headers: Sequence[tuple[str, str]], part: bytes, signature: bytes, boundary: str
) -> bytes:
    """Pure: the whole RFC 5322 message around a signed part and its signature."""
    delim = b"--" + boundary.encode("ascii")
    if delim in part or delim in signature:
        raise AnnounceError(
            "the MIME boundary occurs inside the message",
            where="PGP/MIME message",
            hint="render it again (a new boundary is drawn each time)",
        )
    sig = signature.replace(b"\r\n", b"\n").rstrip(b"\n").replace(b"\n", CRLF) + CRLF
    content_type = (
        f'multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; '
        f'boundary="{boundary}"'
    )
    top = header_lines([*headers, ("MIME-Version", "1.0"), ("Content-Type", content_type)])
    return (
        top
        + CRLF
        + PREAMBLE
        + CRLF
        + delim
        + CRLF
        + part
        + CRLF
        + delim
        + CRLF
        + b'Content-Type: application/pgp-signature; name="signature.asc"'
        + CRLF
        + b"Content-Description: OpenPGP digital signature"
        + CRLF
        + b'Content-Disposition: attachment; filename="signature.asc"'
        + CRLF
        + CRLF
        + sig
        + CRLF
        + delim
        + b"--"
        + CRLF
    )


def sign_message(
    headers: Sequence[tuple[str, str]], text: str, signer: DetachedSigner, boundary: str
) -> tuple[bytes, bytes, bytes]:
    """Sign ``text`` and build the message: (message, signed part, signature)."""
    part = signed_part(text)
    signature = signer.detach_sign(part)
    return assemble(headers, part, signature, boundary), part, signature


_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)


def signed_parts(message: bytes) -> tuple[bytes, bytes]:
    """Pure: (signed part, armored signature) of a PGP/MIME message, as a reader
    would take them apart; CRLF canonical form whatever the file's line ends."""
    raw = re.sub(rb"\r?\n", CRLF, message)
    head, _, body = raw.partition(CRLF + CRLF)
    m = _BOUNDARY.search(head)
    if m is None or b"multipart/signed" not in head.lower():
        raise AnnounceError("not a PGP/MIME signed message", where="message header")
    delim = b"--" + m.group(1)
    chunks = body.split(CRLF + delim)
    # chunks: preamble, signed part, signature part, closing "--"
    if len(chunks) < 4 or not chunks[1].startswith(CRLF):
        raise AnnounceError("the signed message does not have two parts", where="message body")
    signed = chunks[1][len(CRLF) :]
    sig_part = chunks[2][len(CRLF) :]
    _, _, sig = sig_part.partition(CRLF + CRLF)
    return signed, sig
