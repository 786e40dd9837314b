"""Reproducible rpmbuild of each spec for each target, with a content cache.

Each (spec, target) builds in its own throwaway ``_topdir``.  The packages'
bytes depend only on the spec, the component's files, the generated sources it
names and the target's settings: SOURCE_DATE_EPOCH comes from the changelog,
file mtimes are clamped to it and the build host is fixed.  The cache is keyed
by a digest of exactly those inputs, so an unchanged component is not rebuilt.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from repotool.build.specs import SpecUnit, check_sources, content_key, discover, parsed_sources
from repotool.config import Config, TargetConfig
from repotool.errors import BuildCacheError, BuildError, RepotoolError, ToolFailedError
from repotool.process import Runner, require_tools
from repotool.report import Reporter

#: bump when the way packages are built changes, to invalidate old cache entries
BUILD_RECIPE = "1"
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+~^-]*\.rpm\Z")


@dataclass(frozen=True)
class BuiltPackage:
    path: Path  # in the build cache (unsigned)
    component: str
    target: str
    spec: Path

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class BuildOutcome:
    packages: list[BuiltPackage]
    built: list[str]  # "<spec label>/<target>" rebuilt this run
    cached: list[str]  # taken from the cache


def build_defines(cfg: Config, target: TargetConfig, topdir: Path) -> dict[str, str]:
    """The rpm macros that make a build isolated and reproducible."""
    return {
        "_topdir": str(topdir),
        "_sourcedir": str(topdir / "SOURCES"),
        "dist": target.dist,
        "_buildhost": cfg.build.buildhost,
        "packager": cfg.build.packager,
        "vendor": cfg.build.vendor,
        "source_date_epoch_from_changelog": "1",
        "use_source_date_epoch_as_buildtime": "1",
        "clamp_mtime_to_source_date_epoch": "1",
        "_binary_payload": target.payload,
        "_binary_filedigest_algorithm": "8",
        "_build_id_links": "none",
        "_smp_mflags": "-j1",
    }


def _settings(cfg: Config, target: TargetConfig, rpm_version: str) -> list[str]:
    # the topdir differs per run and must not enter the key
    defines = build_defines(cfg, target, Path("/topdir"))
    return [BUILD_RECIPE, rpm_version, *(f"{k}={v}" for k, v in sorted(defines.items()))]


def _rpm_version(runner: Runner) -> str:
    return runner.run(["rpmbuild", "--version"]).text.strip()


def _run_rpmbuild(
    unit: SpecUnit,
    target: TargetConfig,
    cfg: Config,
    runner: Runner,
    generated: Mapping[str, bytes],
    work: Path,
) -> list[Path]:
    topdir = Path(tempfile.mkdtemp(prefix=f"{unit.label}-{target.name}-", dir=work))
    try:
        for sub in ("SOURCES", "BUILD", "RPMS", "SRPMS", "SPECS", "BUILDROOT"):
            (topdir / sub).mkdir()
        defines = build_defines(cfg, target, topdir)
        names = parsed_sources(unit, runner, defines)
        check_sources(unit, names, generated)
        for name in names:
            dest = topdir / "SOURCES" / name
            if name in unit.files:
                shutil.copy2(unit.files[name], dest)
            else:
                dest.write_bytes(generated[name])
        argv: list[str] = ["rpmbuild", "-bb", "--nodeps"]
        for k, v in defines.items():
            argv += ["--define", f"{k} {v}"]
        argv.append(str(unit.spec))
        try:
            runner.run(
                argv,
                env={"TZ": "UTC", "SOURCE_DATE_EPOCH": None, "HOME": str(topdir)},
                where=f"{unit.spec} (target {target.name})",
            )
        except ToolFailedError as e:
            raise BuildError(
                "rpmbuild failed:\n    " + "\n    ".join(e.stderr.strip().splitlines()[-12:]),
                where=f"{unit.spec} (component {unit.component}, target {target.name})",
                hint="run 'repotool build " + unit.component + "' after fixing the spec; "
                "the lines above are rpmbuild's own",
            ) from e
        rpms = sorted((topdir / "RPMS").rglob("*.rpm"))
        if not rpms:
            raise BuildError(
                "rpmbuild produced no package",
                where=str(unit.spec),
                hint="does the spec have a %files section?",
            )
        return rpms
    except BaseException:
        shutil.rmtree(topdir, ignore_errors=True)
        raise


def build(
    cfg: Config,
    runner: Runner,
    reporter: Reporter,
    *,
    components: Sequence[str] = (),
    generated: Mapping[str, bytes] | None = None,
    jobs: int | None = None,
) -> BuildOutcome:
    """Build every spec for every target (cached), in parallel."""
    require_tools(["rpmbuild", "rpmspec"])
    generated = dict(generated or {})
    units = discover(cfg.path(cfg.build.specs_dir), components)
    cache_root = cfg.state / "build-cache"
    work = cfg.state / "build-work"
    cache_root.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    rpm_version = _rpm_version(runner)

    plan: list[tuple[SpecUnit, TargetConfig, Path]] = []
    packages: list[BuiltPackage] = []
    cached: list[str] = []
    for target in cfg.targets:
        settings = _settings(cfg, target, rpm_version)
        for unit in units:
            key = content_key(unit, generated, settings)
            entry = cache_root / target.name / key
            manifest = entry / "packages.json"
            if manifest.is_file():
                names = read_cache_entry(entry)
                packages += [
                    BuiltPackage(entry / n, unit.component, target.name, unit.spec) for n in names
                ]
                cached.append(f"{unit.label}/{target.name}")
            else:
                plan.append((unit, target, entry))

    built: list[str] = []
    if plan:
        n_jobs = jobs or cfg.build.jobs or os.cpu_count() or 1
        errors: list[RepotoolError] = []
        with reporter.step("Building packages", len(plan)) as step:

            def one(item: tuple[SpecUnit, TargetConfig, Path]) -> list[BuiltPackage]:
                unit, target, entry = item
                try:
                    rpms = _run_rpmbuild(unit, target, cfg, runner, generated, work)
                    result = _store(entry, rpms, unit, target)
                finally:
                    step.advance(note=f"{unit.label} ({target.name})")
                return result

            try:
                with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                    futures = [pool.submit(one, item) for item in plan]
                    for item, fut in zip(plan, futures, strict=True):
                        try:
                            packages += fut.result()
                            built.append(f"{item[0].label}/{item[1].name}")
                        except RepotoolError as e:
                            errors.append(e)
                        except OSError as e:
                            errors.append(
                                BuildError(
                                    f"could not keep the built packages: {e.strerror or e}",
                                    where=f"{item[0].spec} (target {item[1].name})",
                                    hint=f"check free space and permissions of {cache_root}",
                                )
                            )
            finally:
                shutil.rmtree(work, ignore_errors=True)
        if errors:
            if len(errors) > 1:
                reporter.warn(f"{len(errors)} builds failed; the first is reported")
            raise errors[0]
    return BuildOutcome(sorted(packages, key=lambda p: (p.target, p.filename)), built, cached)


def parse_manifest(data: bytes) -> list[str] | str:
    """Pure: the package file names a cache entry's packages.json lists, or what is wrong."""
    try:
        names = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "packages.json is not JSON text"
    if not isinstance(names, list) or not names:
        return "packages.json does not list the packages"
    for name in names:
        if not isinstance(name, str) or not _PACKAGE_NAME.match(name):
            return f"packages.json names {json.dumps(name)}, not a package file"
    return names


def read_cache_entry(entry: Path) -> list[str]:
    """The packages of one build-cache entry; a damaged entry is an error naming the
    folder to delete (the next build makes it again), never a traceback."""
    manifest = entry / "packages.json"
    try:
        parsed = parse_manifest(manifest.read_bytes())
    except OSError as e:
        parsed = f"packages.json cannot be read: {e.strerror or e}"
    if isinstance(parsed, list):
        missing = [n for n in parsed if not (entry / n).is_file()]
        if not missing:
            return parsed
        parsed = f"{missing[0]} is missing"
    raise BuildCacheError(
        f"the build cache entry is damaged: {parsed}",
        where=str(manifest),
        hint=f"delete the folder {entry}; the next build makes it again",
    )


def _store(
    entry: Path, rpms: list[Path], unit: SpecUnit, target: TargetConfig
) -> list[BuiltPackage]:
    """Move built packages into the cache entry atomically (rename of a folder)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".new-", dir=entry.parent))
    for rpm in rpms:
        shutil.move(str(rpm), staging / rpm.name)
    (staging / "packages.json").write_text(json.dumps(sorted(r.name for r in rpms)))
    if entry.exists():
        shutil.rmtree(entry)
    os.replace(staging, entry)
    shutil.rmtree(rpms[0].parents[2], ignore_errors=True)  # the throwaway topdir
    return [
        BuiltPackage(entry / r.name, unit.component, target.name, unit.spec) for r in sorted(rpms)
    ]
