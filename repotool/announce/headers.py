"""Pure: message headers as the exact 7-bit bytes that are sent (RFC 5322, RFC 2047).

The standard library's folder is not used: it raised ``UnicodeEncodeError`` on
short non-ASCII subjects ("Café") and, on longer ones, lost or added white
space between encoded words, so a reader saw another subject than the one
rendered.  The rules here are few and fixed:

- a value of printable ASCII (without ``=?``, which a reader would try to
  decode) is written as it is, folded before a space so that lines stay
  within 78 characters where the words allow it (a ``Subject`` whose words
  do not allow it, or that begins or ends with a space, is encoded instead);
- any other ``Subject`` is written entirely as RFC 2047 encoded words
  (UTF-8, "Q"), each at most 75 characters and each line at most 76, never
  splitting a character; a reader joins adjacent encoded words without the
  folding white space between them, so every space of the text is inside a
  word (as ``_``) and comes back exactly;
- in an address header (``From``, ``To``, ``List-Id``: ``phrase <address>``)
  a non-ASCII phrase becomes encoded words, the address stays as it is.

A value holding a line break or another control character is refused: it
would end the header early (header injection) or be changed in transit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from repotool.errors import AnnounceError

CRLF = b"\r\n"
#: RFC 5322: lines SHOULD be at most 78 characters (without CRLF)
MAX_LINE = 78
#: RFC 2047: an encoded word is at most 75 characters, a line with one at most 76
MAX_WORD = 75
MAX_ENCODED_LINE = 76
_PREFIX = "=?utf-8?q?"
_SUFFIX = "?="
#: characters a "Q" encoded word may carry as they are, in any header (RFC 2047 5(3))
_Q_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender", "list-id"})
_PHRASE_ADDRESS = re.compile(r"^(?P<phrase>.*?)\s*(?P<addr><[^<>]*>)$")


def _q_char(ch: str) -> str:
    if ch == " ":
        return "_"
    if ch in _Q_SAFE:
        return ch
    return "".join(f"={b:02X}" for b in ch.encode("utf-8"))


def encoded_words(text: str, first_budget: int) -> list[str]:
    """Pure: ``text`` as RFC 2047 "Q" encoded words; the first at most
    ``first_budget`` characters long (it shares its line with the header
    name), the others at most :data:`MAX_WORD`."""
    words: list[str] = []
    budget = max(first_budget, len(_PREFIX) + len(_SUFFIX) + 12)
    current = ""
    for ch in text:
        piece = _q_char(ch)
        if current and len(_PREFIX) + len(current) + len(piece) + len(_SUFFIX) > budget:
            words.append(_PREFIX + current + _SUFFIX)
            current = ""
            budget = MAX_WORD
        current += piece
    if current or not words:
        words.append(_PREFIX + current + _SUFFIX)
    return words


def _plain_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable() and "=?" not in value


def _fold_ascii(head: str, value: str) -> str:
    """``head`` + value, folded before spaces so lines stay within MAX_LINE.

    A fold goes only before a space that is followed by a word, so no line is
    white space alone; a word longer than a line stays whole on its line.
    """
    lines: list[str] = []
    line = head
    has_word = False
    for i, word in enumerate(value.split(" ")):
        piece = word if i == 0 else " " + word
        if has_word and word and len(line) + len(piece) > MAX_LINE:
            lines.append(line)
            line = ""
        line += piece
        has_word = has_word or bool(word)
    lines.append(line)
    return "\r\n".join(lines)


def _fits(folded: str, value: str) -> bool:
    edges = value == value.strip(" ")
    return edges and all(len(line) <= MAX_LINE for line in folded.split("\r\n"))


def _refuse_controls(name: str, value: str) -> None:
    bad = next((ch for ch in value if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise AnnounceError(
            f"the {name} header would carry the control character U+{ord(bad):04X}",
            where=f"{name} header",
            hint="remove it from the record or the [announce] setting the header comes from",
        )


def header_line(name: str, value: str) -> bytes:
    """Pure: one header, folded and encoded, ending in CRLF (7-bit ASCII)."""
    _refuse_controls(name, value)
    head = f"{name}: "
    plain = _fold_ascii(head, value) if _plain_ascii(value) else None
    if plain is not None and name.lower() == "subject" and not _fits(plain, value):
        plain = None  # a reader would strip the edge spaces; a long word would overflow
    if plain is not None:
        text = plain
    elif name.lower() in _ADDRESS_HEADERS and (m := _PHRASE_ADDRESS.match(value)):
        phrase, addr = m.group("phrase").strip(), m.group("addr")
        if not _plain_ascii(addr):
            raise AnnounceError(
                f"the address in the {name} header is not plain ASCII: {addr}",
                where=f"{name} header",
                hint="use an ASCII e-mail address in the [announce] settings",
            )
        words = encoded_words(phrase, MAX_ENCODED_LINE - len(head))
        text = head + "\r\n ".join([*words, addr])
    else:
        text = head + "\r\n ".join(encoded_words(value, MAX_ENCODED_LINE - len(head)))
    return text.encode("ascii") + CRLF


def header_lines(headers: Sequence[tuple[str, str]]) -> bytes:
    """Pure: every header with :func:`header_line`, in order."""
    return b"".join(header_line(name, value) for name, value in headers)
