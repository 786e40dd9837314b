"""What specs/ can build, without building it; and what it can no longer build.

A package that an advisory names, or that a published repository holds only
because earlier releases put it there, is safe only while a spec under specs/
still builds it: a fresh checkout (a new release machine, CI, a rebuilt
public/) publishes what specs/ builds and nothing else.

Thin shell: :func:`spec_packages` asks ``rpmspec -q`` for the packages of each
spec for each target.  Pure: :func:`unbuildable` compares those with the
packages that are named, and says what to do about each one missing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from repotool.build.rpmbuild import build_defines
from repotool.build.specs import discover
from repotool.config import Config
from repotool.errors import ToolFailedError
from repotool.evr import NEVRA
from repotool.process import Runner

_QUERY_FORMAT = "%{NAME}|%{EPOCHNUM}|%{VERSION}|%{RELEASE}|%{ARCH}\\n"


@dataclass(frozen=True)
class SpecPackages:
    """Target -> the packages each spec builds for it (NEVRA -> spec file); and the
    specs rpmspec could not read, with its words."""

    built_by: Mapping[str, Mapping[NEVRA, Path]]
    unreadable: Mapping[Path, str]


def parse_query(text: str) -> list[NEVRA]:
    """Pure: ``rpmspec -q --qf _QUERY_FORMAT`` output -> NEVRAs."""
    found = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 5:
            name, epoch, version, release, arch = parts
            found.append(NEVRA(name, int(epoch or 0), version, release, arch))
    return found


def spec_packages(cfg: Config, runner: Runner) -> SpecPackages:
    """Every package every spec under specs/ (archive/ included) builds, per target."""
    units = discover(cfg.path(cfg.build.specs_dir))
    built_by: dict[str, dict[NEVRA, Path]] = {}
    unreadable: dict[Path, str] = {}
    for target in cfg.targets:
        found = built_by.setdefault(target.name, {})
        # the build's own macros: the same dist tag, and nothing from ~/.rpmmacros
        defines = build_defines(cfg, target, cfg.state / "build-work")
        for unit in units:
            argv = ["rpmspec", "-q", "--qf", _QUERY_FORMAT]
            for k, v in defines.items():
                argv += ["--define", f"{k} {v}"]
            argv.append(str(unit.spec))
            try:
                done = runner.run(argv, where=str(unit.spec))
            except ToolFailedError as e:
                lines = [ln.strip() for ln in e.stderr.splitlines() if ln.strip()]
                unreadable[unit.spec] = lines[-1] if lines else "rpmspec -q failed"
                continue
            for nevra in parse_query(done.text):
                found[nevra] = unit.spec
    return SpecPackages(built_by, unreadable)


@dataclass(frozen=True)
class Unbuildable:
    """A named package no spec under specs/ builds."""

    target: str
    nevra: NEVRA
    #: who names it: "named by PSSA-2014-0002 (web/content/advisories/PSSA-2014-0002.md:21)",
    #: "held by the published el7 repository"
    named_by: tuple[str, ...]
    #: what to do
    fix: str

    @property
    def message(self) -> str:
        return (
            f"{self.nevra} ({self.target}), {' and '.join(self.named_by)}, is built by no "
            f"spec under specs/: a fresh checkout cannot publish it; fix: {self.fix}"
        )


def unbuildable(
    named: Mapping[str, Mapping[NEVRA, Collection[str]]],
    built_by: Mapping[str, Mapping[NEVRA, Path]],
    specs_dir: Path,
    *,
    root: Path | None = None,
) -> list[Unbuildable]:
    """Pure: each named package (target -> NEVRA -> who names it) that no spec builds
    for that target, with the fix: keep the spec that built it under archive/."""
    out: list[Unbuildable] = []
    for target in sorted(named):
        builds = built_by.get(target, {})
        for nevra in sorted(named[target], key=str):
            if nevra in builds:
                continue
            same_name = sorted({p.parent for n, p in builds.items() if n.name == nevra.name})
            folder = (
                same_name[0].parent if same_name and same_name[0].name == "archive" else None
            ) or (same_name[0] if same_name else specs_dir / nevra.name)
            now = sorted(str(n.evr) for n in builds if n.name == nevra.name)
            release = nevra.release.split(".", 1)[0]
            archived = folder / "archive" / f"{nevra.name}-{nevra.version}-{release}.spec"
            if root is not None and archived.is_relative_to(root):
                archived = archived.relative_to(root)
            if now:
                fix = (
                    f"specs/ builds {nevra.name} {', '.join(now)} only; keep the spec that built "
                    f"{nevra.version}-{release} as {archived} (e.g. from git history), as "
                    "specs/README.md 'Bumping a component' says"
                )
            else:
                # a folder needs its current spec first (archive/ beside it)
                current = folder / f"{nevra.name}.spec"
                if root is not None and current.is_relative_to(root):
                    current = current.relative_to(root)
                fix = (
                    f"no spec builds {nevra.name} at all; bring its spec back as {current} "
                    "(e.g. from git history)"
                )
            # the advisories first: they are why the package matters
            who = tuple(sorted(named[target][nevra], key=lambda w: (w.startswith("held"), w)))
            out.append(Unbuildable(target, nevra, who, fix))
    return out
