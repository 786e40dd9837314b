"""The reviewed records under ``web/content/``: advisories, releases and news.

One set of files feeds the repository's errata (``updateinfo.xml``), the site
and the announce list, so the three can never disagree.  Each record is a
Markdown file with YAML front matter::

    ---
    id: PSSA-2014-0001
    ...
    ---
    Markdown body.

Public API (pure: text in, values out)::

    parse_advisory(text, source) -> Advisory
    parse_release(text, source)  -> Release
    parse_news(text, source)     -> NewsItem
    NEVRA, Reference, FixedPackage, Cvss, Revision, Advisory, Respin, Release, NewsItem,
    Records

``source`` names the file in errors.  A file's problems are raised together as
one :class:`~repotool.errors.RecordInvalidError` (an ``AdvisoryError``) whose
``problems`` name the file, the line, the field and the fix.

This module holds the models (the fields and their checks) and the parsing of
one file's text.  Reading the content folder (``load_records``,
``load_advisories``, ``load_releases``, ``load_news``) and the checks that span
files (ids used twice, releases naming unknown advisories) are
:mod:`repotool.records.loading`.  Reading a file's front matter and turning YAML
and pydantic errors into those problems is :mod:`repotool.records.frontmatter`.  Checks
against the repository (every fixed package present with that NEVRA) live in
:mod:`repotool.records.advisories`; this module only knows the text of the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from repotool.errors import RecordInvalidError, RecordProblem
from repotool.evr import NEVRA as NEVRA  # re-exported: the one NEVRA type
from repotool.records.frontmatter import (
    FrontMatter,
    parse_front_matter,
    strip_fix,
    validate_model,
)
from repotool.records.frontmatter import (
    markdown_sections as markdown_sections,  # re-exported: part of this module's API
)
from repotool.records.screening import (
    body_problems,
    first_forbidden,
    name_error,
    text_error,
    unfinished_advisory_problems,
)
from repotool.records.terms import (  # the patterns are re-exported: part of this API
    ADVISORY_ID_RE as ADVISORY_ID_RE,
)
from repotool.records.terms import (
    ADVISORY_TYPES,
    SEVERITIES,
)
from repotool.records.terms import CVE_RE as CVE_RE
from repotool.records.terms import RELEASE_VERSION_RE as RELEASE_VERSION_RE
from repotool.records.terms import RESPIN_VERSION_RE as RESPIN_VERSION_RE
from repotool.records.terms import SLUG_RE as SLUG_RE

AdvisoryType = Literal["security", "bugfix", "enhancement"]
#: the severities dnf knows (``dnf updateinfo --sec-severity``)
Severity = Literal["Critical", "Important", "Moderate", "Low"]

#: sections an advisory body must carry, as ``## <name>`` headings
ADVISORY_SECTIONS: tuple[str, ...] = ("Description", "Impact", "Remediation")

#: the fix shown when a field with a fixed set of values has another
_CHOICE_FIXES: dict[str, str] = {
    "severity": f"use one of {', '.join(SEVERITIES)} (as dnf knows them)",
    "type": f"use one of {', '.join(ADVISORY_TYPES)}",
}


# --- models ----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _names(v: object, what: str) -> object:
    """A before-validator's body: refuse control/bidi characters and placeholders
    in a name, or in each name of a list or each key of a mapping."""
    items = v if isinstance(v, list | tuple | dict) else [v]
    for item in items:
        err = name_error(item, what)
        if err:
            raise ValueError(err)
    return v


def _text(v: object, what: str, *, multiline: bool = False) -> object:
    err = text_error(v, what, multiline=multiline)
    if err:
        raise ValueError(err)
    return v


class Reference(_Strict):
    """A link an advisory cites (upstream advisory, bug, mailing list post)."""

    url: str
    title: str = ""

    @field_validator("title", mode="before")
    @classmethod
    def _title_text(cls, v: object) -> object:
        return _text(v, "reference title")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+\.[^\s]*\Z", v) or first_forbidden(v):
            raise ValueError(f"{v!r} is not an http(s) URL; write the full https://... address")
        return v


class FixedPackage(_Strict):
    """A package that carries the fix, for one target: name, EVR and arch.

    In the front matter: ``{name: perfsonar-toolkit-ntp, evr: 3.3.2-1.el7}``
    (``arch`` defaults to noarch; ``evr`` is ``[epoch:]version-release``).
    """

    name: str = Field(min_length=1)
    evr: str
    arch: str = "noarch"

    @field_validator("name", "evr", "arch", mode="before")
    @classmethod
    def _plain(cls, v: object, info: ValidationInfo) -> object:
        return _names(v, {"name": "package name"}.get(str(info.field_name), str(info.field_name)))

    @field_validator("evr")
    @classmethod
    def _evr(cls, v: str) -> str:
        if not re.match(r"^(\d+:)?[A-Za-z0-9._+~^]+-[A-Za-z0-9._+~^]+\Z", v):
            raise ValueError(
                f"'{v}' is not an EVR; write [epoch:]version-release, e.g. 3.3.2-1.el7"
            )
        return v

    @property
    def nevra(self) -> NEVRA:
        epoch, _, vr = self.evr.rpartition(":")
        version, _, release = vr.partition("-")
        return NEVRA(self.name, int(epoch or 0), version, release, self.arch)


#: a CVSS v3 base vector, every base metric once, in the specification's order
_CVSS_VECTOR_RE = re.compile(
    r"^CVSS:3\.[01]/AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]/S:[UC]/C:[NLH]/I:[NLH]/A:[NLH]\Z"
)


class Cvss(_Strict):
    """A CVSS v3 base score: ``{score: 7.5, vector: "CVSS:3.1/AV:N/..."}`` (optional)."""

    score: float = Field(ge=0.0, le=10.0)
    vector: str

    @field_validator("vector")
    @classmethod
    def _vector(cls, v: str) -> str:
        if not _CVSS_VECTOR_RE.match(v):
            raise ValueError(
                f"'{v}' is not a CVSS v3 base vector; copy it from the NVD entry, "
                "e.g. CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
            )
        return v

    @property
    def rating(self) -> str:
        """The qualitative rating of the score (CVSS v3.1 specification, section 5)."""
        if self.score == 0:
            return "None"
        if self.score < 4:
            return "Low"
        if self.score < 7:
            return "Medium"
        return "High" if self.score < 9 else "Critical"


class Revision(_Strict):
    """One entry of an advisory's revision history: ``{date: 2014-04-10, note: ...}``."""

    date: date
    note: str = Field(min_length=1)

    @field_validator("note", mode="before")
    @classmethod
    def _free_text(cls, v: object) -> object:
        return _text(v, "revision note")


class Advisory(_Strict):
    """A security advisory (or bugfix/enhancement erratum): ``advisories/<id>.md``.

    Front matter fields: ``id``, ``type``, ``severity`` (required for
    security), ``title``, ``summary`` (one line, optional), ``issued``,
    ``updated`` (defaults to issued), ``cves``, ``references``, ``packages``
    (target -> list of FixedPackage), ``affected_releases`` and ``fixed_in``
    (the release or respin version that ships the fix).  Optional:
    ``update_command`` (what a host runs, default ``yum update --advisory <id>``),
    ``cvss`` (a :class:`Cvss`) and ``revisions`` (the history, oldest first).
    The body is Markdown with ``## Description``, ``## Impact`` and
    ``## Remediation`` sections.
    """

    id: str
    type: AdvisoryType
    severity: Severity | None = None
    title: str = Field(min_length=1)
    summary: str = ""
    issued: date
    updated: date | None = None
    cves: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    packages: dict[str, tuple[FixedPackage, ...]]
    affected_releases: tuple[str, ...] = Field(min_length=1)
    fixed_in: str = ""
    #: why a security advisory lists no CVE (none assigned, a configuration weakness)
    cves_none_reason: str = ""
    #: the command that installs the fix; empty: ``yum update --advisory <id>``
    update_command: str = ""
    cvss: Cvss | None = None
    #: what changed and when, oldest first; empty: issued (and updated) only
    revisions: tuple[Revision, ...] = ()
    # filled from the file, not the front matter
    body: str = ""
    source: str = ""
    #: line of each front matter field in the file, for error messages
    lines: dict[str, int] = Field(default_factory=dict, repr=False)

    @field_validator("id", "fixed_in", mode="before")
    @classmethod
    def _plain(cls, v: object, info: ValidationInfo) -> object:
        return _names(v, {"id": "advisory id"}.get(str(info.field_name), "version"))

    @field_validator("cves", "affected_releases", mode="before")
    @classmethod
    def _plain_items(cls, v: object, info: ValidationInfo) -> object:
        return _names(v, "CVE id" if info.field_name == "cves" else "release version")

    @field_validator("packages", mode="before")
    @classmethod
    def _targets(cls, v: object) -> object:
        return _names(v, "target")

    @field_validator("title", "summary", "cves_none_reason", mode="before")
    @classmethod
    def _free_text(cls, v: object, info: ValidationInfo) -> object:
        return _text(v, str(info.field_name), multiline=info.field_name != "title")

    @field_validator("update_command", mode="before")
    @classmethod
    def _command_text(cls, v: object) -> object:
        return _text(v, "update_command")

    @field_validator("update_command")
    @classmethod
    def _command(cls, v: str) -> str:
        if v and not re.match(r"^(yum|dnf) [^\n;&|`$<>]+\Z", v):
            raise ValueError(
                "the update command is not one yum or dnf command (it may not chain "
                "or redirect commands); write e.g. 'yum update' or "
                "'yum update perfsonar-toolkit-ntp' (further steps go under ## Remediation)"
            )
        return v

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ADVISORY_ID_RE.match(v):
            raise ValueError(f"'{v}' is not an advisory id; write PSSA-<year>-<4 digits>")
        return v

    @field_validator("fixed_in")
    @classmethod
    def _fixed_in(cls, v: str) -> str:
        if v and not (RELEASE_VERSION_RE.match(v) or RESPIN_VERSION_RE.match(v)):
            raise ValueError(
                f"'{v}' is not a release or respin version; write e.g. 3.3.2 or 3.3.2-2"
            )
        return v

    @field_validator("cves")
    @classmethod
    def _cves(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for cve in v:
            if not CVE_RE.match(cve):
                raise ValueError(f"'{cve}' is not a CVE id; write CVE-<year>-<4 or more digits>")
        if len(set(v)) != len(v):
            raise ValueError("a CVE is listed twice; list each once")
        return v

    @field_validator("packages")
    @classmethod
    def _packages(
        cls, v: dict[str, tuple[FixedPackage, ...]]
    ) -> dict[str, tuple[FixedPackage, ...]]:
        if not v or not any(v.values()):
            raise ValueError("no fixed packages; list them per target, e.g. el7: [{name, evr}]")
        return v

    @field_validator("affected_releases")
    @classmethod
    def _affected(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for rel in v:
            if not (RELEASE_VERSION_RE.match(rel) or RESPIN_VERSION_RE.match(rel)):
                raise ValueError(f"'{rel}' is not a release version; write it as e.g. 3.3.1")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Advisory:
        if self.type == "security" and self.severity is None:
            raise ValueError(
                "severity: a security advisory needs a severity; "
                f"use one of {', '.join(SEVERITIES)}"
            )
        if self.updated is not None and self.updated < self.issued:
            raise ValueError(
                f"updated: {self.updated} is before issued {self.issued}; "
                "an advisory cannot be updated before it is issued"
            )
        if self.type != "security" and self.cves:
            raise ValueError("cves: only a security advisory lists CVEs; set type: security")
        previous = self.issued
        for r in self.revisions:
            if not previous <= r.date <= self.last_updated:
                raise ValueError(
                    f"revisions: the entry of {r.date} is not between issued "
                    f"({self.issued}) and updated ({self.last_updated}) in date order; "
                    "list revisions oldest first, dated from issued to updated"
                )
            previous = r.date
        return self

    @property
    def update_cmd(self) -> str:
        """What a host runs to install the fix."""
        return self.update_command or f"yum update --advisory {self.id}"

    @property
    def history(self) -> tuple[Revision, ...]:
        """The revision history; without one in the record, issued (and updated)."""
        if self.revisions:
            return self.revisions
        out = [Revision(date=self.issued, note="Initial release.")]
        if self.last_updated != self.issued:
            out.append(Revision(date=self.last_updated, note="Updated."))
        return tuple(out)

    @property
    def last_updated(self) -> date:
        return self.updated or self.issued

    @property
    def year(self) -> int:
        m = ADVISORY_ID_RE.match(self.id)
        return int(m.group(1)) if m else 0

    @property
    def sections(self) -> dict[str, str]:
        """The body's ``## Heading`` sections, heading -> Markdown text."""
        return markdown_sections(self.body)

    def nevras(self, target: str) -> tuple[NEVRA, ...]:
        return tuple(p.nevra for p in self.packages.get(target, ()))


class Respin(_Strict):
    """A regeneration of a release's media, e.g. 3.3.2-2 after Heartbleed."""

    version: str
    date: date
    advisories: tuple[str, ...] = ()
    notes: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _plain(cls, v: object) -> object:
        return _names(v, "respin version")

    @field_validator("advisories", mode="before")
    @classmethod
    def _plain_ids(cls, v: object) -> object:
        return _names(v, "advisory id")

    @field_validator("notes", mode="before")
    @classmethod
    def _free_text(cls, v: object) -> object:
        return _text(v, "notes", multiline=True)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not RESPIN_VERSION_RE.match(v):
            raise ValueError(f"'{v}' is not a respin version; write <release>-<n>, e.g. 3.3.2-2")
        return v


class Release(_Strict):
    """A release of the toolkit: ``releases/<version>.md``.

    Front matter: ``version``, ``date``, ``title``, ``summary``,
    ``advisories`` (ids this release includes), ``respins``.  The body is
    the release notes in Markdown.
    """

    version: str
    date: date
    title: str = ""
    summary: str = ""
    advisories: tuple[str, ...] = ()
    respins: tuple[Respin, ...] = ()
    body: str = ""
    source: str = ""
    #: line of each front matter field in the file, for error messages
    lines: dict[str, int] = Field(default_factory=dict, repr=False)

    @field_validator("version", mode="before")
    @classmethod
    def _plain(cls, v: object) -> object:
        return _names(v, "release version")

    @field_validator("advisories", mode="before")
    @classmethod
    def _plain_ids(cls, v: object) -> object:
        return _names(v, "advisory id")

    @field_validator("title", "summary", mode="before")
    @classmethod
    def _free_text(cls, v: object, info: ValidationInfo) -> object:
        return _text(v, str(info.field_name), multiline=info.field_name == "summary")

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not RELEASE_VERSION_RE.match(v):
            raise ValueError(f"'{v}' is not a release version; write e.g. 3.3.2")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Release:
        seen: set[str] = set()
        for r in self.respins:
            m = RESPIN_VERSION_RE.match(r.version)
            if m and m.group(1) != self.version:
                raise ValueError(
                    f"respins: {r.version} is not a respin of {self.version}; "
                    f"write {self.version}-<n>"
                )
            if r.date < self.date:
                raise ValueError(
                    f"respins: {r.version} is dated {r.date}, before the release "
                    f"itself ({self.date}); fix the date"
                )
            if r.version in seen:
                raise ValueError(f"respins: {r.version} is listed twice")
            seen.add(r.version)
        return self

    @property
    def latest_version(self) -> str:
        """The newest respin's version, else the release's own."""
        return self.respins[-1].version if self.respins else self.version

    @property
    def all_advisories(self) -> tuple[str, ...]:
        """Advisory ids in the release and in its respins, each once."""
        out: list[str] = list(self.advisories)
        for r in self.respins:
            out.extend(a for a in r.advisories if a not in out)
        return tuple(out)


class NewsItem(_Strict):
    """A news post: ``news/<slug>.md`` with ``title``, ``date``, ``summary``."""

    title: str = Field(min_length=1)
    date: date
    summary: str = ""
    slug: str = ""
    body: str = ""
    source: str = ""

    @field_validator("title", "summary", mode="before")
    @classmethod
    def _free_text(cls, v: object, info: ValidationInfo) -> object:
        return _text(v, str(info.field_name), multiline=info.field_name == "summary")


@dataclass(frozen=True)
class Records:
    """Everything under ``web/content/``, loaded and cross-checked."""

    advisories: tuple[Advisory, ...]
    releases: tuple[Release, ...]
    news: tuple[NewsItem, ...]

    def advisory(self, advisory_id: str) -> Advisory | None:
        return next((a for a in self.advisories if a.id == advisory_id), None)

    def release(self, version: str) -> Release | None:
        return next((r for r in self.releases if r.version == version), None)


# --- parsing (front matter: repotool.records.frontmatter) -----------------------------

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
