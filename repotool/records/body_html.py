"""Pure: what the site's HTML sanitiser would take out of a record's body.

The site renders a body's Markdown (raw HTML allowed through) and then
cleans the HTML against an allow-list (:mod:`repotool.site.render`): a
``<script>`` or ``<iframe>``, an ``onclick=`` or ``style=``, a
``javascript:`` link or an image simply vanish from the page.  That keeps
the site safe but leaves the author thinking the page says what the file
says.  :func:`sanitiser_problems` walks the same Markdown with the same
parser and the site's own allow-list and names each thing that would be
taken out, at its line, so ``repotool advisory check`` can refuse it.

It reads the allow-list from :mod:`repotool.site.render` rather than keeping
a copy, so the check and the page cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.token import Token

from repotool.errors import RecordProblem
from repotool.records.frontmatter import parse_front_matter
from repotool.site.render import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, ALLOWED_URL_SCHEMES

#: tags whose content the sanitiser drops along with the tag
_CONTENT_DROPPED = frozenset({"script", "style"})
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href"})
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*):")
#: a Markdown link CommonMark refuses to make (it stays literal text on the page)
_REFUSED_LINK = re.compile(r"\]\(\s*(javascript|vbscript|data|file):", re.IGNORECASE)
_FIX_HTML = (
    "write it in Markdown (the page keeps only plain formatting, http(s)/mailto "
    "links, lists, code and tables), or remove it"
)


def _scheme_refused(url: str) -> bool:
    m = _SCHEME.match(url)
    return m is not None and m.group(1).lower() not in ALLOWED_URL_SCHEMES


class _Removed(HTMLParser):
    """Collects (offset in the fragment, what the sanitiser removes)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0] - 1
        if tag not in ALLOWED_TAGS:
            dropped = " with its content" if tag in _CONTENT_DROPPED else ""
            self.found.append((line, f"the <{tag}> element is removed from the page{dropped}"))
            return
        allowed = ALLOWED_ATTRIBUTES.get(tag, set())
        for name, value in attrs:
            if name not in allowed:
                self.found.append(
                    (line, f"the {name}= attribute of <{tag}> is removed from the page")
                )
            elif name in _URL_ATTRIBUTES and value and _scheme_refused(value):
                self.found.append(
                    (line, f"the link to {value!r} in <{tag}> is removed from the page")
                )

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _html_fragments(tokens: Iterable[Token]) -> Iterable[tuple[int, str]]:
    """(line in the body, raw HTML) of every HTML block and inline tag."""
    for tok in tokens:
        if tok.type == "html_block" and tok.map:
            yield tok.map[0], tok.content
        elif tok.type == "inline" and tok.map:
            line = tok.map[0]
            for child in tok.children or ():
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                elif child.type == "html_inline":
                    yield line, child.content


def _markdown_removals(tokens: Iterable[Token]) -> Iterable[tuple[int, str, str]]:
    """(line, what, fix) for Markdown the page does not show as written."""
    for tok in tokens:
        if tok.type != "inline" or not tok.map:
            continue
        line = tok.map[0]
        for child in tok.children or ():
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            elif child.type == "image":
                src = str(child.attrs.get("src", ""))
                yield (
                    line,
                    f"the image {src!r} is removed from the page (records show no images)",
                    f"link to it instead: [{child.content or 'image'}]({src})",
                )
            elif child.type == "link_open":
                href = str(child.attrs.get("href", ""))
                if _scheme_refused(href):
                    yield (
                        line,
                        f"the link to {href!r} is removed from the page",
                        "link with http://, https:// or mailto: only",
                    )
            elif child.type == "text":
                for m in _REFUSED_LINK.finditer(child.content):
                    yield (
                        line,
                        f"the {m.group(1).lower()}: link is not made: the page shows it as text",
                        "link with http://, https:// or mailto: only",
                    )


def file_sanitiser_problems(text: str, source: str) -> list[RecordProblem]:
    """Pure: :func:`sanitiser_problems` of a record file's whole text."""
    parsed = parse_front_matter(text, source)
    return sanitiser_problems(parsed.body, source, parsed.body_line)


def sanitiser_problems(body: str, source: str, first_line: int) -> list[RecordProblem]:
    """Pure: one problem for each thing the site's sanitiser would take out of
    ``body`` (Markdown); ``first_line`` is the body's first line in the file."""
    tokens = MarkdownIt("commonmark", {"html": True}).enable("table").parse(body)
    found: list[tuple[int, str, str]] = []
    for line, fragment in _html_fragments(tokens):
        parser = _Removed()
        parser.feed(fragment)
        parser.close()
        found += [(line + offset, what, _FIX_HTML) for offset, what in parser.found]
    found += _markdown_removals(tokens)
    return [
        RecordProblem(source, first_line + line, "body", what, fix)
        for line, what, fix in sorted(found, key=lambda f: f[0])
    ]
