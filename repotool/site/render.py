"""Pure rendering: Markdown to sanitized HTML, and pages through Jinja2.

Record bodies are written by people and reviewed in git, but the site must
stay safe even when a reviewer misses something: Markdown is rendered first,
then the HTML is cleaned with nh3 against a short allow-list, so no
``<script>``, event handler, ``style`` or ``javascript:`` URL survives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from repotool.announce.plaintext import format_size
from repotool.errors import SiteError

#: the HTML a record body may produce, and nothing more
ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "dd",
        "del",
        "dl",
        "dt",
        "em",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "samp",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
ALLOWED_ATTRIBUTES: Mapping[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})

_CVE_TEXT_RE = re.compile(r"\b(CVE-\d{4}-\d{4,})\b")


def markdown_to_html(text: str) -> Markup:
    """Markdown in, sanitized HTML out (safe to put into a page as is)."""
    # CommonMark (fenced code inside list items, as the advisories use it) plus tables;
    # a fresh parser per call: MarkdownIt instances are not meant to be shared by threads
    raw = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    clean = nh3.clean(
        raw,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return Markup(clean)  # cleaned by nh3 just above


def first_paragraph(text: str, limit: int = 300) -> str:
    """Plain text of a Markdown body's first paragraph (for summaries), shortened."""
    para = next((p for p in re.split(r"\n\s*\n", text.strip()) if not p.startswith("#")), "")
    plain = re.sub(r"[`*_\[\]]", "", " ".join(para.split()))
    plain = re.sub(r"\(https?://[^)]*\)", "", plain)
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"


def cve_url(cve: str) -> str:
    return f"https://nvd.nist.gov/vuln/detail/{cve}"


def human_size(size: int) -> str:
    """1_536_000 -> '1.5 MB': the announcements' own formatter, so a size reads the
    same in the mail and on the site (decimal units, 1 MB = 10^6 bytes)."""
    return format_size(size)


def breakable(text: str) -> Markup:
    """Escaped text with a line-break chance (<wbr>) after each '/', '@' and '.' of a
    URL or address: it wraps at its separators instead of widening a table column."""
    return Markup(re.sub(r"([/@.])", r"\1<wbr>", str(escape(text))))


def template_environment(templates_dir: Path) -> jinja2.Environment:
    """A Jinja2 environment over the site's templates; autoescaping everything."""
    if not templates_dir.is_dir():
        raise SiteError(
            "the site templates folder does not exist",
            where=str(templates_dir),
            hint="set [site] templates_dir in repotool.toml to the folder with base.html",
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown_to_html
    env.filters["human_size"] = human_size
    env.filters["cve_url"] = cve_url
    env.filters["breakable"] = breakable
    return env


def render_template(env: jinja2.Environment, template: str, context: Mapping[str, Any]) -> str:
    """Render one page; template problems become SiteErrors that name the template."""
    try:
        return env.get_template(template).render(**context)
    except jinja2.TemplateNotFound as e:
        raise SiteError(
            f"the template '{e.name}' is missing",
            where=template,
            hint="restore it from git (web/templates/)",
        ) from e
    except jinja2.TemplateError as e:
        lineno = getattr(e, "lineno", None)
        raise SiteError(
            f"the template could not be rendered: {e}",
            where=f"{template}:{lineno}" if lineno else template,
            hint="fix the template at the line named",
        ) from e
