"""The reviewed records under ``web/content/``: advisories, releases and news.

One set of files feeds the repository's errata (``updateinfo.xml``), the site
and the announce list, so the three can never disagree.  Each record is a
Markdown file with YAML front matter::

    ---
    id: PSSA-2014-0001
    ...
    ---
    Markdown body.

Public API: the models, their fields and the checks within one record::

    Advisory, Respin, Release, NewsItem, Records

Where the rest lives:

* :mod:`repotool.records.fields`: the parts of an advisory that are models of
  their own (``Reference``, ``FixedPackage``, ``Cvss``, ``Revision``) and the
  validator bodies that screen names and free text;
* :mod:`repotool.records.parsing`: one file's text in, a model out
  (``parse_advisory``, ``parse_release``, ``parse_news``), every problem of the
  file raised together as one :class:`~repotool.errors.RecordInvalidError`;
* :mod:`repotool.records.frontmatter`: reading a file's front matter and turning
  YAML and pydantic errors into problems that name the file, line, field and fix;
* :mod:`repotool.records.loading`: reading the content folder and the checks
  that span files (ids used twice, releases naming unknown advisories);
* :mod:`repotool.records.advisories`: checks against the repository (every
  fixed package present with that NEVRA); this module only knows the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from repotool.evr import NEVRA
from repotool.records.fields import (
    Cvss,
    FixedPackage,
    Reference,
    Revision,
    StrictRecord,
    check_names,
    check_text,
)
from repotool.records.frontmatter import markdown_sections
from repotool.records.terms import (
    ADVISORY_ID_RE,
    CVE_RE,
    RELEASE_VERSION_RE,
    RESPIN_VERSION_RE,
    SEVERITIES,
)

AdvisoryType = Literal["security", "bugfix", "enhancement"]
#: the severities dnf knows (``dnf updateinfo --sec-severity``)
Severity = Literal["Critical", "Important", "Moderate", "Low"]


class Advisory(StrictRecord):
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
        return check_names(v, {"id": "advisory id"}.get(str(info.field_name), "version"))

    @field_validator("cves", "affected_releases", mode="before")
    @classmethod
    def _plain_items(cls, v: object, info: ValidationInfo) -> object:
        return check_names(v, "CVE id" if info.field_name == "cves" else "release version")

    @field_validator("packages", mode="before")
    @classmethod
    def _targets(cls, v: object) -> object:
        return check_names(v, "target")

    @field_validator("title", "summary", "cves_none_reason", mode="before")
    @classmethod
    def _free_text(cls, v: object, info: ValidationInfo) -> object:
        return check_text(v, str(info.field_name), multiline=info.field_name != "title")

    @field_validator("update_command", mode="before")
    @classmethod
    def _command_text(cls, v: object) -> object:
        return check_text(v, "update_command")

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


class Respin(StrictRecord):
    """A regeneration of a release's media, e.g. 3.3.2-2 after Heartbleed."""

    version: str
    date: date
    advisories: tuple[str, ...] = ()
    notes: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _plain(cls, v: object) -> object:
        return check_names(v, "respin version")

    @field_validator("advisories", mode="before")
    @classmethod
    def _plain_ids(cls, v: object) -> object:
        return check_names(v, "advisory id")

    @field_validator("notes", mode="before")
    @classmethod
    def _free_text(cls, v: object) -> object:
        return check_text(v, "notes", multiline=True)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not RESPIN_VERSION_RE.match(v):
            raise ValueError(f"'{v}' is not a respin version; write <release>-<n>, e.g. 3.3.2-2")
        return v


class Release(StrictRecord):
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
        return check_names(v, "release version")

    @field_validator("advisories", mode="before")
    @classmethod
    def _plain_ids(cls, v: object) -> object:
        return check_names(v, "advisory id")

    @field_validator("title", "summary", mode="before")
    @classmethod
    def _free_text(cls, v: object, info: ValidationInfo) -> object:
        return check_text(v, str(info.field_name), multiline=info.field_name == "summary")

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


class NewsItem(StrictRecord):
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
        return check_text(v, str(info.field_name), multiline=info.field_name == "summary")


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
