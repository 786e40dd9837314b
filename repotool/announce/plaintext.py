"""Pure: the Markdown of the records as plain text for e-mail, wrapped at 72 columns.

The records are written in a small part of Markdown (paragraphs, ``-`` and
``1.`` lists, fenced code blocks, ``` `code` ```, ``**bold**``, links and
``##`` headings).  Mail readers show plain text, so markup that only makes
sense in a browser is dropped (``` `code` ``` keeps its backquotes: they
mark what to type, and a short command is never split), code blocks are
indented four spaces and never wrapped (a command must stay one line), and
everything else is filled to :data:`WIDTH` columns.  A single word longer
than the line (a URL, a path) stands alone on its line rather than being
broken.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

#: the longest line of an announcement body
WIDTH = 72

_BULLET = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^(\s*)(```|~~~)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_CODE = re.compile(r"`([^`]+)`")
#: code spans up to this long are never split across lines
_KEEP = 32
#: stands for a space that must not break while filling; a space again after
_NBSP = "\x00"


def inline_text(text: str) -> str:
    """Markdown inline markup to plain words: links keep their URL."""
    text = _LINK.sub(lambda m: f"{m.group(1)} <{m.group(2)}>", text)
    text = _AUTOLINK.sub(r"<\1>", text)
    text = _EMPHASIS.sub(r"\2", text)
    # keep the backquotes (they mark what to type) and a short command on one line
    return _CODE.sub(
        lambda m: (
            "`" + (m.group(1).replace(" ", _NBSP) if len(m.group(1)) <= _KEEP else m.group(1)) + "`"
        ),
        text,
    )


def fill(text: str, *, indent: str = "", first: str | None = None, width: int = WIDTH) -> str:
    """Fill one paragraph; ``first`` is the first line's prefix (a list marker)."""
    words = " ".join(text.split())
    if not words:
        return (first or indent).rstrip()
    return textwrap.fill(
        words,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ).replace(_NBSP, " ")


def underline(title: str, char: str = "-") -> str:
    return f"{title}\n{char * min(len(title), WIDTH)}"


@dataclass
class _Block:
    """A run of lines that render together: a paragraph, list item or code block."""

    kind: str  # "para", "item", "code", "heading", "blank"
    indent: int
    text: list[str]
    marker: str = ""


def _blocks(markdown: str) -> list[_Block]:
    blocks: list[_Block] = []
    code: _Block | None = None
    fence_indent = 0
    for raw in markdown.splitlines():
        line = raw.rstrip()
        fence = _FENCE.match(line)
        if code is not None:
            if fence:
                blocks.append(code)
                code = None
            else:
                stripped = line[fence_indent:] if line[:fence_indent].isspace() else line.lstrip()
                code.text.append(stripped)
            continue
        if fence:
            fence_indent = len(fence.group(1))
            code = _Block("code", fence_indent, [])
            continue
        if not line.strip():
            blocks.append(_Block("blank", 0, []))
            continue
        heading = _HEADING.match(line)
        if heading:
            blocks.append(_Block("heading", 0, [heading.group(2)]))
            continue
        bullet = _BULLET.match(line)
        if bullet:
            marker = bullet.group(2)
            marker = "-" if marker in ("*", "+") else marker
            blocks.append(_Block("item", len(bullet.group(1)), [bullet.group(3)], marker))
            continue
        indent = len(line) - len(line.lstrip())
        last = blocks[-1] if blocks else None
        if last is not None and last.kind in ("para", "item"):
            last.text.append(line.strip())
        else:
            blocks.append(_Block("para", indent, [line.strip()]))
    if code is not None:  # an unclosed fence: keep what it held
        blocks.append(code)
    return blocks


def markdown_to_text(markdown: str, *, indent: str = "") -> str:
    """Markdown in, plain text out; every line fits in :data:`WIDTH` columns
    except code lines and single words that cannot be broken."""
    out: list[str] = []
    # indentation (in source columns) of open list items -> their text indent
    levels: list[tuple[int, str]] = []

    def text_indent(source_indent: int) -> str:
        """The indent of text inside the innermost list item it belongs to."""
        if source_indent == 0:
            levels.clear()
        while levels and levels[-1][0] >= source_indent:
            levels.pop()
        return levels[-1][1] if levels else indent

    for block in _blocks(markdown):
        if block.kind == "blank":
            if out and out[-1] != "":
                out.append("")
            continue
        if block.kind == "heading":
            levels.clear()
            if out and out[-1] != "":
                out.append("")
            out.append(indent + underline(inline_text(block.text[0])).replace("\n", "\n" + indent))
            out.append("")
            continue
        if block.kind == "item":
            while levels and levels[-1][0] >= block.indent:
                levels.pop()
            base = levels[-1][1] if levels else indent
            first = f"{base}{block.marker} "
            out.append(
                fill(inline_text(" ".join(block.text)), indent=" " * len(first), first=first)
            )
            # continuation text of this item sits under its first word
            levels.append((block.indent, " " * len(first)))
            continue
        base = text_indent(block.indent)
        if block.kind == "code":
            if out and out[-1] != "":
                out.append("")
            out.extend((base + "    " + c).rstrip() for c in block.text)
            out.append("")
            continue
        out.append(fill(inline_text(" ".join(block.text)), indent=base))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)


def format_size(size: int) -> str:
    """1_536_000 -> '1.5 MB': the one way sizes are written, in mail and on the site.

    Decimal units (1 kB = 1000 bytes, 1 MB = 10^6, 1 GB = 10^9), as disks and
    downloads are counted; below 1 kB the exact bytes."""
    if size < 1000:
        return f"{size} bytes"
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if size < scale * 999.95:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1e9:.1f} GB"
