"""Record files' front matter: reading it, and saying exactly what is wrong.

A record under ``web/content/`` is Markdown with YAML front matter::

    ---
    field: value
    ---
    Markdown body.

This module knows the file format, not the fields: :func:`parse_front_matter`
splits a file's text into a :class:`FrontMatter` (the YAML mapping, the body,
and the line of each top-level key), and :func:`validate_model` checks it
against a pydantic model, translating every pydantic error into a
:class:`~repotool.errors.RecordProblem` that names the file, the line, the
field and the fix.  :func:`markdown_sections` splits a body at its ``## ``
headings.  The models themselves live in :mod:`repotool.records.models`, the loading of
folders in :mod:`repotool.records.loading`.

All pure: text in, values (or one :class:`~repotool.errors.RecordInvalidError`
listing every problem) out.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from repotool.errors import RecordInvalidError, RecordProblem


class _FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as strings, so pydantic reports bad ones
    (2014-02-30) as field errors instead of PyYAML crashing."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class FrontMatter:
    """One record file, split: its front matter mapping and its Markdown body."""

    data: dict[str, Any]
    body: str
    #: line (1-based, in the file) of each top-level key
    key_lines: dict[str, int]
    #: line (1-based, in the file) of the body's first line
    body_line: int = 1


def _split_front_matter(text: str, source: str) -> tuple[str, str, int, int]:
    """Return (yaml text, body, line of the first YAML line, line of the body)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise RecordInvalidError.one(
            RecordProblem(
                source,
                1,
                "",
                "the file does not start with YAML front matter",
                "make the first line '---', then the fields, then a closing '---' line",
            )
        )
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            rest = "".join(lines[i + 1 :])
            blank = rest[: len(rest) - len(rest.lstrip())].count("\n")
            return "".join(lines[1:i]), rest.strip() + "\n", 2, i + 2 + blank
    raise RecordInvalidError.one(
        RecordProblem(
            source,
            1,
            "",
            "the front matter is never closed",
            "add a line '---' after the last field, before the Markdown body",
        )
    )


def parse_front_matter(text: str, source: str) -> FrontMatter:
    """Pure: a record file's text in, its front matter and body out.

    ``source`` names the file in errors.  Raises RecordInvalidError with one
    problem (the file's line and a fix) for a missing or unclosed front
    matter, invalid YAML, a front matter that is not a mapping, or a field
    given twice.
    """
    yaml_text, body, first_line, body_line = _split_front_matter(text, source)
    try:
        node = yaml.compose(yaml_text, Loader=_FrontMatterLoader)
        data = yaml.load(yaml_text, Loader=_FrontMatterLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = (mark.line + first_line) if mark is not None else 1
        problem = getattr(e, "problem", None) or str(e)
        context = getattr(e, "context", None)
        context_mark = getattr(e, "context_mark", None)
        if context and context_mark is not None and context_mark.line + first_line != line:
            problem += f" ({context} on line {context_mark.line + first_line})"
        raise RecordInvalidError.one(
            RecordProblem(
                source,
                line,
                "",
                f"the front matter is not valid YAML: {problem}",
                "fix the YAML syntax at this line (indentation, quoting, a missing ':')",
            )
        ) from e
    if not isinstance(data, dict):
        raise RecordInvalidError.one(
            RecordProblem(
                source,
                first_line,
                "",
                "the front matter is not a mapping of fields",
                "write one 'field: value' per line between the '---' lines",
            )
        )
    key_lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + first_line
            if key in key_lines:
                raise RecordInvalidError.one(
                    RecordProblem(
                        source,
                        line,
                        key,
                        f"the field is given twice (first on line {key_lines[key]})",
                        "keep one of the two",
                    )
                )
            key_lines[key] = line
    return FrontMatter(data, body, key_lines, body_line)


_M = TypeVar("_M", bound=BaseModel)


def validate_model(
    model: type[_M],
    parsed: FrontMatter,
    source: str,
    extra: Mapping[str, Any],
    *,
    choice_fixes: Mapping[str, str] | None = None,
) -> _M:
    """Build ``model`` from the front matter plus ``extra`` (fields the file itself gives).

    A front matter key that clashes with ``extra`` is refused.  Every pydantic
    error becomes a RecordProblem at the line of its top-level field;
    ``choice_fixes`` maps a field with a fixed set of values to the fix shown
    when the value is not one of them.  Raises RecordInvalidError listing all.
    """
    clash = sorted(set(extra) & set(parsed.data))
    if clash:
        raise RecordInvalidError.one(
            RecordProblem(
                source,
                parsed.key_lines.get(clash[0], 1),
                clash[0],
                f"'{clash[0]}' is not a front matter field (it comes from the file itself)",
                "remove it from the front matter",
            )
        )
    try:
        return model.model_validate({**parsed.data, **extra})
    except ValidationError as e:
        known = [name for name in model.model_fields if name not in extra]
        raise RecordInvalidError(
            [
                _problem_from_pydantic(err, parsed, source, choice_fixes or {}, known)
                for err in e.errors()
            ]
        ) from e


def _problem_from_pydantic(
    err: Any,
    parsed: FrontMatter,
    source: str,
    choice_fixes: Mapping[str, str],
    known: Sequence[str] = (),
) -> RecordProblem:
    loc: tuple[Any, ...] = tuple(err.get("loc", ()))
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    field = ".".join(str(p) for p in loc)
    # model-level checks name their field as "field: message"
    if not loc:
        head, sep, rest = msg.partition(": ")
        if sep and " " not in head:
            field, msg = head, rest
    top = field.split(".")[0] if field else ""
    line = parsed.key_lines.get(top, 1)
    kind = str(err.get("type", ""))
    fix = _fix_for(kind, top, msg, choice_fixes)
    if kind == "missing":
        msg = "is required but missing"
    elif kind == "extra_forbidden":
        msg = "is not a known field"
        close = difflib.get_close_matches(field, known, n=1) if "." not in field else []
        if close:
            fix = f"did you mean '{close[0]}'? correct its spelling"
    elif kind == "literal_error":
        value = err.get("input")
        msg = f"{value!r} is not allowed"
    return RecordProblem(source, line, field, msg, fix)


def _fix_for(kind: str, field: str, msg: str, choice_fixes: Mapping[str, str]) -> str:
    if kind == "missing":
        return f"add '{field}:' to the front matter"
    if kind == "extra_forbidden":
        return "remove it or correct its spelling (see docs/advisories.md for the fields)"
    if kind == "literal_error":
        return choice_fixes.get(field, "use one of the values the message names")
    if kind.startswith("date"):
        return "write a real calendar date as YYYY-MM-DD"
    if "; " in msg:
        return msg.split("; ", 1)[1]
    return "correct the value (see docs/advisories.md)"


def strip_fix(problems: list[RecordProblem]) -> list[RecordProblem]:
    """Messages of our own validators carry '<what>; <fix>': keep the fix apart."""
    out = []
    for p in problems:
        what, sep, _ = p.what.partition("; ")
        out.append(RecordProblem(p.file, p.line, p.field, what if sep else p.what, p.fix))
    return out


def markdown_sections(body: str) -> dict[str, str]:
    """Pure: split Markdown at ``## Heading`` lines (heading -> text)."""
    sections: dict[str, str] = {}
    current: str | None = None
    buf: list[str] = []
    in_fence = False
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            if current is not None:
                sections[current] = "\n".join(buf).strip()
            current, buf = line[3:].strip(), []
        elif current is not None:
            buf.append(line)
    if current is not None:
        sections[current] = "\n".join(buf).strip()
    return sections
