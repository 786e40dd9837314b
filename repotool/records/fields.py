"""Field types and validator bodies shared by the record models.

The parts of an advisory that are models of their own (:class:`Reference`,
:class:`FixedPackage`, :class:`Cvss`, :class:`Revision`), the strict base every
record model derives from, and :func:`check_names` / :func:`check_text`, the
bodies of the before-validators that refuse control characters, bidi overrides
and template placeholders (the screening itself is :mod:`repotool.records.screening`).
The records (advisory, release, respin, news) are :mod:`repotool.records.models`.
"""

from __future__ import annotations

import re
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from repotool.evr import NEVRA
from repotool.records.screening import first_forbidden, name_error, text_error


class StrictRecord(BaseModel):
    """Frozen, refuses unknown fields, strips the whitespace around strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def check_names(v: object, what: str) -> object:
    """A before-validator's body: refuse control/bidi characters and placeholders
    in a name, or in each name of a list or each key of a mapping."""
    items = v if isinstance(v, list | tuple | dict) else [v]
    for item in items:
        err = name_error(item, what)
        if err:
            raise ValueError(err)
    return v


def check_text(v: object, what: str, *, multiline: bool = False) -> object:
    """A before-validator's body: refuse control/bidi characters and placeholders
    in free text (``multiline``: line breaks allowed)."""
    err = text_error(v, what, multiline=multiline)
    if err:
        raise ValueError(err)
    return v


class Reference(StrictRecord):
    """A link an advisory cites (upstream advisory, bug, mailing list post)."""

    url: str
    title: str = ""

    @field_validator("title", mode="before")
    @classmethod
    def _title_text(cls, v: object) -> object:
        return check_text(v, "reference title")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+\.[^\s]*\Z", v) or first_forbidden(v):
            raise ValueError(f"{v!r} is not an http(s) URL; write the full https://... address")
        return v


class FixedPackage(StrictRecord):
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
        return check_names(
            v, {"name": "package name"}.get(str(info.field_name), str(info.field_name))
        )

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


class Cvss(StrictRecord):
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


class Revision(StrictRecord):
    """One entry of an advisory's revision history: ``{date: 2014-04-10, note: ...}``."""

    date: date
    note: str = Field(min_length=1)

    @field_validator("note", mode="before")
    @classmethod
    def _free_text(cls, v: object) -> object:
        return check_text(v, "revision note")
