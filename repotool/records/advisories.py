"""Advisories against the repository: every fixed package present with its NEVRA.

Pure functions (values in, values out)::

    check_advisories(advisories, repo_packages)      # raises AdvisoryMismatchError
    advisory_problems(advisories, repo_packages)     # the same, as a list of RecordProblem

``repo_packages`` maps a target name (``el6``) to the NEVRAs its repository
holds, as :class:`repotool.evr.NEVRA` values.  The records themselves come from
:mod:`repotool.records.models`.

Thin shell: :func:`read_repo_packages` reads a published repository's primary
metadata with createrepo_c.

The repository's errata (``updateinfo.xml``) are :mod:`repotool.records.updateinfo`;
a new advisory's id and text, and the ``advisory list`` table, are
:mod:`repotool.records.authoring`.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import createrepo_c as cr

from repotool.errors import AdvisoryError, AdvisoryMismatchError, RecordProblem
from repotool.evr import NEVRA, evr_cmp
from repotool.records.loading import duplicate_advisory_problems
from repotool.records.models import Advisory

# --- validation against the repository --------------------------------------------


def advisory_problems(
    advisories: Sequence[Advisory],
    repo_packages: Mapping[str, Collection[NEVRA]],
    *,
    unchecked_targets: Collection[str] = (),
) -> list[RecordProblem]:
    """Pure: every way the advisories disagree with the repositories.

    Each fixed package must be in its target's repository with that exact
    NEVRA; each target an advisory names must be a target of ``repo_packages``
    (or of ``unchecked_targets``: real targets whose repository is not at hand,
    whose packages are then not checked); ids must be unique.
    """
    problems = duplicate_advisory_problems(advisories)
    repos = {t: set(pkgs) for t, pkgs in repo_packages.items()}
    known = ", ".join(sorted({*repos, *unchecked_targets})) or "(none)"
    for adv in advisories:
        line = adv.lines.get("packages", 1)
        for target, fixed in adv.packages.items():
            if target in unchecked_targets and target not in repos:
                continue
            if target not in repos:
                problems.append(
                    RecordProblem(
                        adv.source,
                        line,
                        f"packages.{target}",
                        f"'{target}' is not a target of this configuration",
                        f"use one of the configured targets: {known}",
                    )
                )
                continue
            held = repos[target]
            for i, pkg in enumerate(fixed):
                want = pkg.nevra
                if want in held:
                    continue
                same_name = sorted(
                    (n for n in held if n.name == want.name and n.arch == want.arch),
                    key=_by_evr,
                )
                field = f"packages.{target}.{i}"
                if not same_name:
                    problems.append(
                        RecordProblem(
                            adv.source,
                            line,
                            field,
                            f"there is no package {want.name} ({want.arch}) in the "
                            f"{target} repository",
                            _missing_name_fix(want, held),
                        )
                    )
                elif dist := _with_dist_tag(want, same_name):
                    problems.append(
                        RecordProblem(
                            adv.source,
                            line,
                            field,
                            f"{want} is not in the {target} repository: its release "
                            f"lacks the dist tag ({dist.release})",
                            f"write evr: {dist.evr}",
                        )
                    )
                else:
                    have = ", ".join(str(n.evr) for n in same_name)
                    # older than what is held: its spec was replaced instead of archived
                    build_it = (
                        f"keep the spec that built {want.name} {want.evr} under "
                        "specs/<component>/archive/ (specs/README.md, 'Bumping a component')"
                        if evr_cmp(want.evr, same_name[-1].evr) < 0
                        else f"build the fix (update specs/{want.name} to {want.evr})"
                    )
                    problems.append(
                        RecordProblem(
                            adv.source,
                            line,
                            field,
                            f"{want} is not in the {target} repository "
                            f"(it holds {want.name} {have})",
                            f"{build_it}, or correct evr if the fix is one of: {have}",
                        )
                    )
    return problems


def _missing_name_fix(want: NEVRA, held: Collection[NEVRA]) -> str:
    """The fix for a package name the repository does not hold: another arch
    of it, or the names it looks like."""
    arches = sorted({n.arch for n in held if n.name == want.name})
    if arches:
        return f"set arch: {arches[0]} (the repository holds {want.name} for {', '.join(arches)})"
    scored = sorted(
        (
            (difflib.SequenceMatcher(None, want.name, name).ratio(), name)
            for name in {n.name for n in held}
        ),
        reverse=True,
    )
    # the near names only: within a little of the nearest, and not far off at all
    best = scored[0][0] if scored else 1.0
    close = [name for ratio, name in scored if ratio >= max(0.6, best - 0.1)][:3]
    if close:
        return f"did you mean {' or '.join(close)}? correct the name"
    return (
        "correct the name (see specs/), or add the component and build it before "
        "publishing the advisory"
    )


def _with_dist_tag(want: NEVRA, same_name: Sequence[NEVRA]) -> NEVRA | None:
    """The package ``want`` means when its evr left out the dist tag
    (3.3.2-3 for 3.3.2-3.el7), if the repository holds exactly one such."""
    found = [
        n
        for n in same_name
        if (n.epoch, n.version) == (want.epoch, want.version)
        and n.release.startswith(want.release + ".")
        and "-" not in n.release
    ]
    return found[0] if len(found) == 1 else None


def _nevra_evr_cmp(a: NEVRA, b: NEVRA) -> int:
    return evr_cmp(a.evr, b.evr)


#: sort key: oldest first, as rpm orders versions (rpmvercmp)
_by_evr = functools.cmp_to_key(_nevra_evr_cmp)


def check_advisories(
    advisories: Sequence[Advisory], repo_packages: Mapping[str, Collection[NEVRA]]
) -> None:
    """Raise AdvisoryMismatchError listing every problem, or return quietly.

    ``repo_packages``: target -> NEVRAs of that target's repository after the
    publish being prepared.  Call it before anything is swapped into public/.
    """
    problems = advisory_problems(advisories, repo_packages)
    if problems:
        raise AdvisoryMismatchError(problems)


# --- reading a published repository (thin shell) ----------------------------------


def read_repo_packages(
    repo_dir: Path, locations: dict[NEVRA, str] | None = None
) -> dict[NEVRA, str]:
    """NEVRA -> package checksum of every package in a repository's primary metadata;
    ``locations`` (if given) gets NEVRA -> the file's path in the repository (a
    re-signed package's is not Packages/<NEVRA>.rpm, docs/keys.md)."""
    repomd_path = repo_dir / "repodata" / "repomd.xml"
    try:
        repomd = cr.Repomd(str(repomd_path))
    except (OSError, cr.CreaterepoCError) as e:
        raise AdvisoryError(
            f"cannot read the repository metadata: {e}",
            where=str(repomd_path),
            hint="publish the repository first (repotool publish)",
        ) from e
    primary = next((r for r in repomd.records if r.type == "primary"), None)
    if primary is None:
        raise AdvisoryError(
            "the repository has no primary metadata",
            where=str(repomd_path),
            hint="publish the repository again (repotool publish)",
        )
    out: dict[NEVRA, str] = {}

    def take(pkg: Any) -> None:
        key = NEVRA(pkg.name, int(pkg.epoch or 0), pkg.version, pkg.release, pkg.arch)
        out[key] = pkg.pkgId
        if locations is not None:
            locations[key] = pkg.location_href

    cr.xml_parse_primary(
        str(repo_dir / primary.location_href), pkgcb=take, do_files=False, warningcb=None
    )
    return out
