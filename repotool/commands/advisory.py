"""``repotool advisory check | new | list``: the security advisories and release records."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repotool.errors import AdvisoryError, AdvisoryMismatchError, RecordInvalidError, RecordProblem
from repotool.records.terms import (
    ADVISORY_TYPES,
    CVE_RE,
    RELEASE_VERSION_RE,
    RESPIN_VERSION_RE,
    SEVERITIES,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from repotool.cli import Context
    from repotool.config import Config
    from repotool.evr import NEVRA
    from repotool.records.models import Advisory, Records

# The records (pydantic) and the repository reader (createrepo_c) are imported by
# the handlers that use them, so that every other command starts without them.


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "advisory",
        help="check, create and list security advisories",
        description=_wrapped(
            "Security advisories are Markdown files with YAML front matter in "
            "web/content/advisories/; they become the repository's updateinfo (errata), "
            "pages on the site and announcements."
        ),
        epilog="examples:\n"
        "  repotool advisory new --severity Critical --cve CVE-2014-0160 --affected 3.3.2\n"
        "  repotool advisory check\n"
        "  repotool advisory list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    adv_sub = p.add_subparsers(dest="advisory_command", metavar="ACTION", required=True)

    check = adv_sub.add_parser(
        "check",
        parents=[common],
        help="validate advisories and release records (and against the published repository)",
        description=_wrapped(
            "Validate every advisory, release and news record under "
            "web/content/: the fields, the body's sections, no text left from the "
            "'advisory new' template (FILL IN), at least one CVE for a security advisory "
            "(or cves_none_reason), no control or bidi characters, no file over 256 KiB, and "
            "nothing in a body that the site would strip (<script>, <iframe>, style=, "
            "javascript: links, images). Then check that each fixed package is in its "
            "target's published repository with that exact NEVRA, or is built by a spec "
            "under specs/ (the next 'repotool release' publishes it). Every problem in every "
            "file is listed at once as file:line: field, with a fix: line. 'repotool release' "
            "and 'repotool announce' refuse the same problems in the records' own text "
            "and fields. A warning names each package that an advisory names or a published "
            "repository holds but no spec under specs/ (archive/ included) builds any more: "
            "a fresh checkout could not publish it, so keep its spec under archive/."
        ),
        epilog="examples:\n"
        "  repotool advisory check                 every record, against public/repo/ and specs/\n"
        "  repotool advisory check --json\n"
        "exit status 0 when all is valid (warnings included), 7 when a record has a problem",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.set_defaults(handler=check_command)

    new = adv_sub.add_parser(
        "new",
        parents=[common],
        help="write a new advisory file with the next free id",
        description=_wrapped(
            "Write web/content/advisories/PSSA-<year>-<n>.md with the next free "
            "id: the front matter with what the options give, a fixed-package list per "
            "configured target, and the body's Description, Impact and Remediation sections "
            "marked FILL IN. The file is refused by 'advisory check', 'release' and "
            "'announce' until every FILL IN is replaced and the fixed packages, the CVEs "
            "(or cves_none_reason) and fixed_in are written. The options are checked at "
            "once: a malformed --cve or --affected writes nothing."
        ),
        epilog="examples:\n"
        "  repotool advisory new --title 'OpenSSL \"Heartbleed\"' --severity Critical \\\n"
        "      --cve CVE-2014-0160 --affected 3.3.2\n"
        "  repotool advisory new --type bugfix --title 'ntpd restarts twice at boot'\n"
        "then edit the file it names, and run: repotool advisory check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    new.add_argument("--title", default="", type=_title_arg, help="one-line title")
    new.add_argument("--type", choices=ADVISORY_TYPES, default="security", dest="advisory_type")
    new.add_argument("--severity", choices=SEVERITIES, default="Important")
    new.add_argument(
        "--cve",
        action="append",
        default=[],
        type=_cve_arg,
        metavar="CVE-YYYY-NNNN",
        help="a CVE id (repeatable)",
    )
    new.add_argument(
        "--affected",
        action="append",
        default=[],
        type=_version_arg,
        metavar="VERSION",
        help="an affected release, e.g. 3.3.1 (repeatable)",
    )
    new.add_argument(
        "--year", type=_year_arg, default=None, help="year of the id (default: this year)"
    )
    new.set_defaults(handler=new_command)

    lst = adv_sub.add_parser(
        "list",
        parents=[common],
        help="print the advisories as a table (or JSON with --json)",
        description=_wrapped(
            "Print every advisory under web/content/advisories/ as a table, one line each, "
            "newest first. With --json: every field of each (packages, CVEs, dates, "
            "fixed_in, source file), for scripts."
        ),
        epilog="examples:\n"
        "  repotool advisory list\n"
        "  repotool advisory list --json | jq -r '.advisories[].id'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lst.set_defaults(handler=list_command)


def _wrapped(text: str) -> str:
    """A description for RawDescriptionHelpFormatter (which keeps the examples' lines)."""
    return textwrap.fill(text, width=78)


def _cve_arg(text: str) -> str:
    if not CVE_RE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a CVE id: write CVE-<year>-<4 or more digits>, e.g. CVE-2014-0160"
        )
    return text


def _version_arg(text: str) -> str:
    if not (RELEASE_VERSION_RE.match(text) or RESPIN_VERSION_RE.match(text)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a release version: write e.g. 3.3.1 (or a respin, 3.3.2-2)"
        )
    return text


def _title_arg(text: str) -> str:
    from repotool.records.screening import first_forbidden

    bad = first_forbidden(text)
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"the title holds the control character U+{ord(bad):04X}: write it on one line, "
            "with visible characters only"
        )
    return text.strip()


def _year_arg(text: str) -> int:
    if not (text.isdigit() and len(text) == 4):
        raise argparse.ArgumentTypeError(f"{text!r} is not a year: write e.g. 2014")
    return int(text)


def _content_dir(cfg: Config) -> Path:
    return cfg.path(cfg.site.content_dir)


def published_packages(cfg: Config) -> tuple[dict[str, set[NEVRA]], list[str]]:
    """Target -> NEVRAs of its published repository (all arches); and the targets
    not published yet."""
    from repotool.records.advisories import read_repo_packages

    found: dict[str, set[NEVRA]] = {}
    missing: list[str] = []
    for target in cfg.targets:
        pkgs: set[NEVRA] = set()
        published = False
        for arch in target.arches:
            repo_dir = cfg.public_dir / "repo" / target.name / arch
            if (repo_dir / "repodata" / "repomd.xml").exists():
                published = True
                pkgs |= set(read_repo_packages(repo_dir))
        if published:
            found[target.name] = pkgs
        else:
            missing.append(target.name)
    return found, missing


def check_command(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.records.advisories import advisory_problems

    cfg = ctx.config
    records, stripped = _load_checked_records(_content_dir(cfg))
    repo_packages, unpublished = published_packages(cfg)
    buildable = _buildable_packages(cfg, ctx)
    against = _checked_against(repo_packages, buildable)
    unchecked = [t for t in unpublished if t not in against]
    # before any error: a package no spec builds is often why an advisory fails here
    lost = _warn_unbuildable(records.advisories, repo_packages, buildable, ctx)
    mismatches = advisory_problems(list(records.advisories), against, unchecked_targets=unchecked)
    if mismatches:
        raise AdvisoryMismatchError(_in_file_order([*mismatches, *stripped]))
    if stripped:
        raise RecordInvalidError(_in_file_order(stripped))
    for name in unchecked:
        ctx.reporter.warn(
            f"the {name} repository is not published yet: its fixed packages were not checked "
            "(repotool release checks them against what it builds)"
        )
    pending = _pending_packages(records.advisories, repo_packages, buildable)
    checked = sorted(repo_packages)
    return {
        "summary": _check_summary(records, checked, pending, lost),
        "advisories": [a.id for a in records.advisories],
        "releases": [r.version for r in records.releases],
        "news": [n.slug for n in records.news],
        "checked_targets": checked,
        "unchecked_targets": unchecked,
        "not_published_yet": pending,
        "not_rebuildable": lost,
    }


def _load_checked_records(content: Path) -> tuple[Records, list[RecordProblem]]:
    """The records, and what the page would lose to the sanitiser; invalid records
    raise with those losses among their problems (not after them)."""
    from repotool.records.loading import load_records, load_sanitiser_problems

    stripped = load_sanitiser_problems(content)
    try:
        return load_records(content), stripped
    except RecordInvalidError as e:
        raise RecordInvalidError(_in_file_order([*e.problems, *stripped])) from None


def _checked_against(
    repo_packages: Mapping[str, Collection[NEVRA]],
    buildable: Mapping[str, Mapping[NEVRA, Path]] | None,
) -> dict[str, set[NEVRA]]:
    """Pure: target -> the packages an advisory may name.  A fixed package specs/
    builds is accepted before it is published: the next 'repotool release'
    publishes it (and checks the advisory again against that)."""
    against = {t: set(pkgs) for t, pkgs in repo_packages.items()}
    for target, pkgs in (buildable or {}).items():
        against.setdefault(target, set()).update(pkgs)
    return against


def _warn_unbuildable(
    advisories: Sequence[Advisory],
    repo_packages: Mapping[str, Collection[NEVRA]],
    buildable: Mapping[str, Mapping[NEVRA, Path]] | None,
    ctx: Context,
) -> list[str]:
    """Warn about (and return) every named package no spec builds any more."""
    from repotool.build.buildable import unbuildable

    if buildable is None:
        return []
    cfg = ctx.config
    named = _named_packages(advisories, repo_packages, cfg)
    specs_dir = cfg.path(cfg.build.specs_dir)
    lost: list[str] = []
    for item in unbuildable(named, buildable, specs_dir, root=cfg.root):
        ctx.reporter.warn(item.message)
        lost.append(item.message)
    return lost


def _pending_packages(
    advisories: Sequence[Advisory],
    repo_packages: Mapping[str, Collection[NEVRA]],
    buildable: Mapping[str, Mapping[NEVRA, Path]] | None,
) -> list[str]:
    """Pure: the fixed packages not published yet that specs/ builds, as
    "<nevra> (<target>)", sorted."""
    if buildable is None:
        return []
    return sorted(
        f"{pkg.nevra} ({target})"
        for adv in advisories
        for target, fixed in adv.packages.items()
        for pkg in fixed
        if pkg.nevra not in repo_packages.get(target, set())
        and pkg.nevra in buildable.get(target, {})
    )


def _check_summary(
    records: Records, checked: list[str], pending: list[str], lost: list[str]
) -> str:
    """Pure: the one-line summary of 'advisory check'."""
    against_text = f" against the {', '.join(checked)} repositories" if checked else ""
    summary = (
        f"{len(records.advisories)} advisories, {len(records.releases)} releases "
        f"and {len(records.news)} news items are valid{against_text}"
    )
    if pending:
        summary += (
            f"; not published yet, built by specs/ (the next 'repotool release' publishes "
            f"them): {', '.join(pending)}"
        )
    if lost:
        summary += f"; {len(lost)} package(s) named cannot be rebuilt from specs/ (see above)"
    return summary


def _buildable_packages(cfg: Config, ctx: Context) -> Mapping[str, Mapping[NEVRA, Path]] | None:
    """Target -> what specs/ builds, and from which spec; None (with a warning)
    when that cannot be told."""
    from shutil import which

    from repotool.build.buildable import spec_packages
    from repotool.errors import SpecError

    if which("rpmspec") is None:
        ctx.reporter.warn(
            "rpmspec is not installed: not checked whether specs/ still builds the packages "
            "the advisories and repositories name (apt-get install rpm)"
        )
        return None
    try:
        found = spec_packages(cfg, ctx.runner)
    except SpecError as e:
        ctx.reporter.warn(
            f"{e.where}: {e.what}: not checked whether specs/ still builds the packages "
            "the advisories and repositories name"
        )
        return None
    for spec, why in found.unreadable.items():
        ctx.reporter.warn(f"{spec}: rpmspec cannot read it ({why}); its packages are not counted")
    return found.built_by


def _named_packages(
    advisories: Sequence[Advisory], repo_packages: Mapping[str, Collection[NEVRA]], cfg: Config
) -> dict[str, dict[NEVRA, set[str]]]:
    """Target -> NEVRA -> who names it: the advisories' fixed packages, and every
    package a published repository holds (kept there by earlier releases)."""
    named: dict[str, dict[NEVRA, set[str]]] = {}
    targets = {t.name for t in cfg.targets}
    for adv in advisories:
        line = adv.lines.get("packages", 1)
        for target, fixed in adv.packages.items():
            if target not in targets:
                continue  # an error of its own: not a target of this configuration
            for pkg in fixed:
                who = named.setdefault(target, {}).setdefault(pkg.nevra, set())
                who.add(f"named by {adv.id} ({_shown(adv.source, cfg.root)}:{line})")
    for target, pkgs in repo_packages.items():
        for nevra in pkgs:
            named.setdefault(target, {}).setdefault(nevra, set()).add(
                f"held by the published {target} repository"
            )
    return named


def _shown(path: str, root: Path) -> str:
    """A path inside the project as the maintainer types it there."""
    p = Path(path)
    return str(p.relative_to(root)) if p.is_relative_to(root) else path


def _in_file_order(problems: list[RecordProblem]) -> list[RecordProblem]:
    return sorted(problems, key=lambda p: (p.file, p.line))


def new_command(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.records.authoring import next_advisory_id, scaffold_advisory

    cfg = ctx.config
    folder = _content_dir(cfg) / "advisories"
    today = dt.date.today()
    year = args.year or today.year
    # Every file name counts, even of advisories that do not validate yet.
    taken = [p.stem for p in folder.glob("*.md")] if folder.is_dir() else []
    advisory_id = next_advisory_id(taken, year)
    text = scaffold_advisory(
        advisory_id,
        today=today,
        targets=[t.name for t in cfg.targets],
        advisory_type=args.advisory_type,
        severity=args.severity,
        title=args.title,
        cves=args.cve,
        affected=args.affected,
    )
    path = folder / f"{advisory_id}.md"
    _write_new(path, text)
    return {
        "summary": f"wrote {path}: fill in the FILL IN parts and the fixed packages, "
        "then run: repotool advisory check",
        "id": advisory_id,
        "path": str(path),
    }


def _write_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet, never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        # link() refuses to replace: two maintainers cannot take the same id.
        os.link(tmp, path)
    except FileExistsError as e:
        raise AdvisoryError(
            "the advisory file already exists",
            where=str(path),
            hint="run 'repotool advisory new' again to take the next free id",
        ) from e
    finally:
        tmp.unlink(missing_ok=True)


def list_command(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.records.authoring import advisory_rows, format_table
    from repotool.records.loading import load_advisories

    rows = advisory_rows(load_advisories(_content_dir(ctx.config)))
    return {"summary": format_table(rows), "advisories": rows}
