"""Reading the content folder: the records under ``web/content/``, loaded and cross-checked.

Public API (reads only the files named; the checks are pure)::

    load_advisories(content_dir) -> list[Advisory]   # content_dir/advisories/*.md, sorted by id
    load_releases(content_dir)   -> list[Release]    # content_dir/releases/*.md, newest first
    load_news(content_dir)       -> list[NewsItem]   # content_dir/news/*.md, newest first
    load_records(content_dir)    -> Records          # all three, plus cross-checks
    duplicate_advisory_problems(advisories)          # ids used twice
    cross_record_problems(advisories, releases)      # releases naming unknown or later advisories

``content_dir`` is the folder that holds ``advisories/``, ``releases/`` and
``news/`` (``cfg.path(cfg.site.content_dir)``).  Every problem in every file is
collected and raised together as one :class:`~repotool.errors.RecordInvalidError`
(an ``AdvisoryError``) whose ``problems`` name the file, the line, the field
and the fix.

The models are :mod:`repotool.records.models`, the parsing of one file's text
:mod:`repotool.records.parsing`;
this module walks the folders and checks what spans more than one file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TypeVar

from repotool.errors import RecordInvalidError, RecordProblem
from repotool.records.models import Advisory, NewsItem, Records, Release
from repotool.records.parsing import parse_advisory, parse_news, parse_release
from repotool.records.screening import MAX_RECORD_BYTES

_R = TypeVar("_R")


def _load_dir(
    folder: Path, parse: Callable[[str, str], _R], problems: list[RecordProblem]
) -> list[_R]:
    out: list[_R] = []
    for path, text in _read_dir(folder, problems):
        try:
            out.append(parse(text, str(path)))
        except RecordInvalidError as e:
            problems.extend(e.problems)
    return out


def _read_dir(folder: Path, problems: list[RecordProblem]) -> list[tuple[Path, str]]:
    """(path, text) of each ``*.md`` in ``folder``; a file that cannot be read,
    or is too large, becomes a problem instead."""
    out: list[tuple[Path, str]] = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.md")):
        source = str(path)
        try:
            # bounded: a record larger than the limit is refused, never read whole
            with path.open("rb") as f:
                data = f.read(MAX_RECORD_BYTES + 1)
            if len(data) > MAX_RECORD_BYTES:
                problems.append(
                    RecordProblem(
                        source,
                        1,
                        "",
                        f"the file is larger than {MAX_RECORD_BYTES // 1024} KiB, the limit "
                        "for a record",
                        "keep the record to its text; link large material (logs, "
                        "captures, images) under references: instead",
                    )
                )
                continue
            text = data.decode("utf-8").replace("\r\n", "\n")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(
                RecordProblem(
                    source,
                    1,
                    "",
                    f"cannot read the file: {e}",
                    "fix its permissions or encoding (UTF-8)",
                )
            )
            continue
        out.append((path, text))
    return out


def load_sanitiser_problems(content_dir: Path) -> list[RecordProblem]:
    """What the site's HTML sanitiser would take out of each record's body
    (:func:`repotool.records.body_html.sanitiser_problems`), for every record
    whose front matter can be read (the others' problems come from loading)."""
    from repotool.records.body_html import file_sanitiser_problems

    out: list[RecordProblem] = []
    for sub in ("advisories", "releases", "news"):
        for path, text in _read_dir(content_dir / sub, []):
            try:
                out += file_sanitiser_problems(text, str(path))
            except RecordInvalidError:
                continue
    return out


def duplicate_advisory_problems(advisories: Sequence[Advisory]) -> list[RecordProblem]:
    """Pure: one problem per advisory that reuses an id already taken."""
    first: dict[str, Advisory] = {}
    out: list[RecordProblem] = []
    for adv in advisories:
        if adv.id in first:
            out.append(
                RecordProblem(
                    adv.source,
                    adv.lines.get("id", 1),
                    "id",
                    f"the id {adv.id} is already used by {first[adv.id].source}",
                    "give this advisory the next free id (repotool advisory new)",
                )
            )
        else:
            first[adv.id] = adv
    return out


def load_advisories(content_dir: Path) -> list[Advisory]:
    """Read and validate ``content_dir/advisories/*.md``, sorted by id.

    Raises RecordInvalidError (an AdvisoryError) listing every problem found,
    including ids used twice.
    """
    problems: list[RecordProblem] = []
    advisories = _load_dir(content_dir / "advisories", parse_advisory, problems)
    problems.extend(duplicate_advisory_problems(advisories))
    if problems:
        raise RecordInvalidError(problems)
    return sorted(advisories, key=lambda a: a.id)


def load_releases(content_dir: Path) -> list[Release]:
    """Read and validate ``content_dir/releases/*.md``, newest first."""
    problems: list[RecordProblem] = []
    releases = _load_dir(content_dir / "releases", parse_release, problems)
    if problems:
        raise RecordInvalidError(problems)
    return sorted(releases, key=lambda r: (r.date, _version_key(r.version)), reverse=True)


def load_news(content_dir: Path) -> list[NewsItem]:
    """Read and validate ``content_dir/news/*.md``, newest first."""
    problems: list[RecordProblem] = []
    news = _load_dir(content_dir / "news", parse_news, problems)
    if problems:
        raise RecordInvalidError(problems)
    return sorted(news, key=lambda n: (n.date, n.slug), reverse=True)


def cross_record_problems(
    advisories: Iterable[Advisory], releases: Iterable[Release]
) -> list[RecordProblem]:
    """Pure: releases must name advisories that exist, and not before they were issued."""
    by_id = {a.id: a for a in advisories}
    out: list[RecordProblem] = []
    for rel in releases:
        spins: list[tuple[str, date, tuple[str, ...]]] = [(rel.version, rel.date, rel.advisories)]
        spins += [(r.version, r.date, r.advisories) for r in rel.respins]
        for version, when, ids in spins:
            field = "advisories" if version == rel.version else "respins"
            for aid in ids:
                adv = by_id.get(aid)
                if adv is None:
                    out.append(
                        RecordProblem(
                            rel.source,
                            rel.lines.get(field, 1),
                            field,
                            f"{version} includes {aid}, but there is no advisories/{aid}.md",
                            "correct the id or add the advisory",
                        )
                    )
                elif adv.issued > when:
                    out.append(
                        RecordProblem(
                            rel.source,
                            rel.lines.get(field, 1),
                            field,
                            f"{version} ({when}) includes {aid}, which is issued later "
                            f"({adv.issued})",
                            "correct the dates: a release cannot ship a later advisory",
                        )
                    )
    return out


def empty_content_problem(content_dir: Path) -> RecordProblem:
    """A content folder with no record at all is never "valid": it is the wrong
    folder (a typo in [site] content_dir, a run outside the project) or a lost one."""
    what = (
        "holds no records (no advisories/, releases/ or news/ file)"
        if content_dir.is_dir()
        else "does not exist"
    )
    return RecordProblem(
        str(content_dir),
        0,
        "",
        f"the content folder {what}",
        "check [site] content_dir in repotool.toml (default web/content) and run "
        "repotool from the project; the release record web/content/releases/<version>.md "
        "is needed for a release",
    )


def load_records(content_dir: Path) -> Records:
    """Read advisories, releases and news; check that releases name real advisories.

    Raises RecordInvalidError listing every problem in every file.
    """
    problems: list[RecordProblem] = []
    advisories = _load_dir(content_dir / "advisories", parse_advisory, problems)
    problems.extend(duplicate_advisory_problems(advisories))
    releases = _load_dir(content_dir / "releases", parse_release, problems)
    news = _load_dir(content_dir / "news", parse_news, problems)
    problems.extend(cross_record_problems(advisories, releases))
    if not problems and not (advisories or releases or news):
        problems.append(empty_content_problem(content_dir))
    if problems:
        raise RecordInvalidError(problems)
    return Records(
        advisories=tuple(sorted(advisories, key=lambda a: a.id)),
        releases=tuple(
            sorted(releases, key=lambda r: (r.date, _version_key(r.version)), reverse=True)
        ),
        news=tuple(sorted(news, key=lambda n: (n.date, n.slug), reverse=True)),
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.split(r"[.-]", version) if p.isdigit())
