"""Parsing one record file's text: an advisory, a release or a news item.

Public API (pure: text in, values out)::

    parse_advisory(text, source) -> Advisory
    parse_release(text, source)  -> Release
    parse_news(text, source)     -> NewsItem

``source`` names the file in errors.  A file's problems are raised together as
one :class:`~repotool.errors.RecordInvalidError` (an ``AdvisoryError``) whose
``problems`` name the file, the line, the field and the fix: the model's field
checks (:mod:`repotool.records.models`), the body's sections and characters
(:mod:`repotool.records.screening`) and whether the file's name matches its id.
Reading the front matter and turning YAML and pydantic errors into problems is
:mod:`repotool.records.frontmatter`; reading the content folder is
:mod:`repotool.records.loading`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from repotool.errors import RecordInvalidError, RecordProblem
from repotool.records.frontmatter import (
    FrontMatter,
    markdown_sections,
    parse_front_matter,
    strip_fix,
    validate_model,
)
from repotool.records.models import Advisory, NewsItem, Release
from repotool.records.screening import body_problems, name_error, unfinished_advisory_problems
from repotool.records.terms import ADVISORY_TYPES, SEVERITIES, SLUG_RE

#: sections an advisory body must carry, as ``## <name>`` headings
ADVISORY_SECTIONS: tuple[str, ...] = ("Description", "Impact", "Remediation")

#: the fix shown when a field with a fixed set of values has another
_CHOICE_FIXES: dict[str, str] = {
    "severity": f"use one of {', '.join(SEVERITIES)} (as dnf knows them)",
    "type": f"use one of {', '.join(ADVISORY_TYPES)}",
}


_Record = TypeVar("_Record", Advisory, Release, NewsItem)


def _validated(
    model: type[_Record], parsed: FrontMatter, source: str, extra: dict[str, Any]
) -> tuple[_Record | None, list[RecordProblem]]:
    try:
        return validate_model(model, parsed, source, extra, choice_fixes=_CHOICE_FIXES), []
    except RecordInvalidError as e:
        return None, strip_fix(e.problems)


def _name_problem(
    parsed: FrontMatter, source: str, field: str, stem: str, value: object
) -> list[RecordProblem]:
    if not isinstance(value, str) or stem == value.strip() or name_error(value, field):
        return []
    return [
        RecordProblem(
            source,
            parsed.key_lines.get(field, 1),
            field,
            f"the file is named {stem}.md but its {field} is {value.strip()}",
            f"rename the file to {value.strip()}.md or correct the {field}",
        )
    ]


def parse_advisory(text: str, source: str) -> Advisory:
    """Pure: the text of one advisory file in, an Advisory out.

    ``source`` names the file in errors.  Raises RecordInvalidError listing
    every problem of the file: its fields, its body (sections, control
    characters, the ``advisory new`` template's text) and its name.
    """
    parsed = parse_front_matter(text, source)
    extra = {"body": parsed.body, "source": source, "lines": parsed.key_lines}
    adv, problems = _validated(Advisory, parsed, source, extra)
    problems += unfinished_advisory_problems(parsed.data, parsed.key_lines, source)
    missing = [s for s in ADVISORY_SECTIONS if not markdown_sections(parsed.body).get(s)]
    if missing:
        problems.append(
            RecordProblem(
                source,
                parsed.body_line,
                "body",
                f"the body lacks the section(s) {', '.join(missing)}",
                "add '## " + "', '## ".join(missing) + "' headings with their text",
            )
        )
    problems += body_problems(parsed.body, source, parsed.body_line)
    problems += _name_problem(parsed, source, "id", Path(source).stem, parsed.data.get("id"))
    if problems or adv is None:
        raise RecordInvalidError(sorted(problems, key=lambda p: p.line))
    return adv


def parse_release(text: str, source: str) -> Release:
    """Pure: the text of one release file in, a Release out."""
    parsed = parse_front_matter(text, source)
    extra = {"body": parsed.body, "source": source, "lines": parsed.key_lines}
    rel, problems = _validated(Release, parsed, source, extra)
    problems += body_problems(parsed.body, source, parsed.body_line)
    version = parsed.data.get("version")
    problems += _name_problem(parsed, source, "version", Path(source).stem, version)
    if problems or rel is None:
        raise RecordInvalidError(sorted(problems, key=lambda p: p.line))
    return rel


def parse_news(text: str, source: str) -> NewsItem:
    """Pure: the text of one news file in, a NewsItem out (slug = file name)."""
    parsed = parse_front_matter(text, source)
    slug = Path(source).stem
    if not SLUG_RE.match(slug):
        raise RecordInvalidError.one(
            RecordProblem(
                source,
                1,
                "",
                f"'{slug}' cannot be used in a URL",
                "name the file with lower-case letters, digits, '-', '.' or '_'",
            )
        )
    extra = {"body": parsed.body, "source": source, "slug": slug}
    item, problems = _validated(NewsItem, parsed, source, extra)
    problems += body_problems(parsed.body, source, parsed.body_line)
    if problems or item is None:
        raise RecordInvalidError(sorted(problems, key=lambda p: p.line))
    return item
