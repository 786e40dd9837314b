"""Pure: what no record may carry, whatever its fields say.

A record feeds file names (updateinfo, pages, outbox files), e-mail headers
and pages, so some text is refused before it gets that far:

- a file larger than :data:`MAX_RECORD_BYTES` (a 49 MB advisory took 290 s
  and 1.97 GB of memory to render);
- control characters (a label ``3.3.2\\n`` would end a header or a line of a
  listing early) and the Unicode bidirectional controls (U+202E turns
  ``exe.txt`` into ``txt.exe`` on screen; in a command it hides what is run);
- the text of the ``advisory new`` template: the ``FILL IN`` marker and the
  template's sentences, so an unfinished advisory can never be published,
  announced or signed; and what such an advisory leaves empty (no CVE and no
  ``cves_none_reason``, no ``fixed_in``: :func:`unfinished_advisory_problems`).

The helpers come in two shapes: ``*_error(value)`` returns one message (or
``None``) for a pydantic validator in :mod:`repotool.records.fields`, written
as ``"<what>; <fix>"``; :func:`body_problems` returns the problems of a
Markdown body, one per line, with their line numbers in the file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from repotool.errors import RecordProblem

#: the largest record file read; the largest shipped one is about 3 KB
MAX_RECORD_BYTES = 256 * 1024

#: Unicode bidirectional formatting characters (Trojan Source, CVE-2021-42574)
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

#: what ``advisory new`` writes where the author has to write something
PLACEHOLDER = "FILL IN"
#: the template's text, by where it stands; each is refused wherever it stays
TEMPLATE_TEXT: dict[str, str] = {
    "title": "what is wrong, in one line",
    "affected_releases": "e.g. 3.3.2",
    "Description": "what the flaw is and which toolkit components it touches.",
    "Impact": "what an attacker can do to a toolkit host, and under what conditions.",
    "Remediation": "the steps for every host, starting with:",
}

#: names (ids, versions, labels, package names, targets): letters, digits and . _ + - ~ ^ :
_NAME_CHARS = re.compile(r"[A-Za-z0-9._+~^:-]+")


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def _forbidden(ch: str, *, allow: str = "") -> bool:
    if ch in allow:
        return False
    return ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def first_forbidden(text: str, *, allow: str = "") -> str | None:
    """The first control or bidi character in ``text`` (those in ``allow`` aside)."""
    return next((ch for ch in text if _forbidden(ch, allow=allow)), None)


def _template_hit(text: str) -> str | None:
    if PLACEHOLDER in text:  # the marker as written; "fill in the form" is prose
        return PLACEHOLDER
    folded = " ".join(text.split()).casefold()
    return next((t for t in TEMPLATE_TEXT.values() if t.casefold() in folded), None)


def name_error(value: object, what: str) -> str | None:
    """For a name (id, version, label, package name, target): no control, bidi
    or white space, no placeholder, only the characters names are made of."""
    if not isinstance(value, str):
        return None  # pydantic reports the type
    bad = first_forbidden(value)
    if bad is not None:
        return (
            f"the {what} {value!r} holds the control character {_describe(bad)}; "
            "retype it without the invisible character"
        )
    if _template_hit(value):
        return f"the {what} is still the template's placeholder; write the real {what}"
    if value and not _NAME_CHARS.fullmatch(value):
        odd = next(ch for ch in value if not _NAME_CHARS.fullmatch(ch))
        return (
            f"the {what} {value!r} holds {odd!r} ({_describe(odd)}); "
            "use only letters, digits and . _ + - ~ ^ :"
        )
    return None


def text_error(value: object, what: str, *, multiline: bool = False) -> str | None:
    """For free text (titles, summaries, notes): no control or bidi character
    (a multi-line text may hold line breaks and tabs), no template text."""
    if not isinstance(value, str):
        return None
    bad = first_forbidden(value, allow="\n\t" if multiline else "")
    if bad is not None:
        return (
            f"the {what} holds the control character {_describe(bad)}; "
            "retype it without the invisible character"
            + ("" if multiline else " (and on one line)")
        )
    hit = _template_hit(value)
    if hit:
        return f"the {what} is still the template's text ({hit!r}); write the real {what}"
    return None


def body_problems(body: str, source: str, first_line: int) -> list[RecordProblem]:
    """Pure: one problem per line of a Markdown body that holds a control or
    bidi character or the template's text; ``first_line`` is the body's first
    line in the file."""
    out: list[RecordProblem] = []
    # split at "\n" only: splitlines() would also split at (and so hide) U+2028, \x0c, ...
    for i, line in enumerate(body.split("\n")):
        where = first_line + i
        bad = first_forbidden(line, allow="\t")
        if bad is not None:
            out.append(
                RecordProblem(
                    source,
                    where,
                    "body",
                    f"the line holds the control character {_describe(bad)}",
                    "delete the invisible character (a reader, or a shell a command is "
                    "pasted into, would see other text than the page shows)",
                )
            )
        hit = _template_hit(line)
        if hit:
            out.append(
                RecordProblem(
                    source,
                    where,
                    "body",
                    f"the template's text is still here ({hit!r})",
                    "replace it with the advisory's own text",
                )
            )
    return out


def unfinished_advisory_problems(
    data: Mapping[str, Any], lines: Mapping[str, int], source: str
) -> list[RecordProblem]:
    """Pure: what an unfinished advisory leaves empty: its CVEs (or why there
    are none) and the release that ships the fix.  Read from the raw front
    matter ``data`` (``lines``: the line of each key), so these come out with
    every other problem of the file."""
    out: list[RecordProblem] = []
    cves, reason = data.get("cves"), data.get("cves_none_reason")
    has_reason = isinstance(reason, str) and bool(reason.strip())
    if data.get("type") == "security" and not cves and not has_reason:
        out.append(
            RecordProblem(
                source,
                lines.get("cves", lines.get("type", 1)),
                "cves",
                "a security advisory lists no CVE",
                "list the CVE ids it fixes under cves:, or, when none is assigned (a "
                "configuration weakness, say), write why in cves_none_reason:",
            )
        )
    if cves and has_reason:
        out.append(
            RecordProblem(
                source,
                lines["cves_none_reason"],
                "cves_none_reason",
                "the advisory lists CVEs and also says why it has none",
                "remove cves_none_reason (it is only for an advisory without CVEs)",
            )
        )
    fixed_in = data.get("fixed_in")
    if fixed_in is None or (isinstance(fixed_in, str) and not fixed_in.strip()):
        out.append(
            RecordProblem(
                source,
                lines.get("fixed_in", 1),
                "fixed_in",
                "is empty: the advisory does not say which release ships the fix",
                'write the release or respin version, e.g. fixed_in: "3.3.2-2"',
            )
        )
    return out
