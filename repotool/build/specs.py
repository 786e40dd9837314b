"""The toolkit's components as data: specs/<component>/ and what a build needs.

A component is a folder holding ``<component>.spec`` (the current version), its
sources, and ``archive/*.spec`` (earlier versions still kept in the repository).
Each spec file is built once per target.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repotool.errors import SpecError, UnknownComponentError
from repotool.process import Runner

_SOURCE_LINE = re.compile(r"^\s*(Source|Patch)(\d*)\s*:\s*(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class SpecUnit:
    """One spec file of one component."""

    component: str
    spec: Path
    #: files of the component folder (sources), name → path
    files: Mapping[str, Path]

    @property
    def label(self) -> str:
        return self.spec.stem if self.spec.parent.name == "archive" else self.component


def discover(specs_dir: Path, only: Sequence[str] = ()) -> list[SpecUnit]:
    """Every spec under specs_dir, or those of the named components."""
    if not specs_dir.is_dir():
        raise SpecError(
            "the specs folder does not exist",
            where=str(specs_dir),
            hint="set [build] specs_dir in repotool.toml",
        )
    folders = sorted(p for p in specs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    known = {p.name: p for p in folders}
    for name in only:
        if name not in known:
            raise UnknownComponentError(
                f"unknown component '{name}'",
                where=str(specs_dir),
                hint="known components: " + ", ".join(sorted(known)),
            )
    units: list[SpecUnit] = []
    for folder in folders:
        if only and folder.name not in only:
            continue
        main = folder / f"{folder.name}.spec"
        if not main.is_file():
            raise SpecError(
                f"component '{folder.name}' has no {main.name}",
                where=str(folder),
                hint=f"name the current spec {main.name} (earlier versions go in archive/)",
            )
        files = {
            p.name: p
            for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix != ".spec" and not p.name.startswith(".")
        }
        archive = (
            sorted((folder / "archive").glob("*.spec")) if (folder / "archive").is_dir() else []
        )
        for spec in [*archive, main]:
            units.append(SpecUnit(folder.name, spec, files))
    return units


def referenced_sources(spec_text: str) -> list[tuple[int, str]]:
    """Pure: (line number, file name) of each Source/Patch in a spec.

    Macros in the name are left as they are; callers resolve them with rpmspec.
    """
    found = []
    for lineno, line in enumerate(spec_text.splitlines(), start=1):
        m = _SOURCE_LINE.match(line)
        if m:
            found.append((lineno, m.group(3).rsplit("/", 1)[-1]))
    return found


def parsed_sources(unit: SpecUnit, runner: Runner, defines: Mapping[str, str]) -> list[str]:
    """Source/Patch file names after macro expansion (rpmspec --parse)."""
    argv: list[str] = ["rpmspec", "--parse"]
    for k, v in defines.items():
        argv += ["--define", f"{k} {v}"]
    argv.append(str(unit.spec))
    from repotool.errors import ToolFailedError

    try:
        done = runner.run(argv, where=str(unit.spec))
    except ToolFailedError as e:
        raise SpecError(
            _rpm_error_text(e.stderr),
            where=str(unit.spec),
            hint="fix the spec; 'rpmspec --parse' shows how rpm reads it",
        ) from e
    return [name for _, name in referenced_sources(done.text)]


def _rpm_error_text(stderr: str) -> str:
    errors = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith("error:")]
    return "; ".join(errors) if errors else stderr.strip()[-500:]


def check_sources(unit: SpecUnit, names: Sequence[str], generated: Mapping[str, bytes]) -> None:
    """Every referenced source must be in the component folder or generated."""
    text = unit.spec.read_text(encoding="utf-8", errors="replace")
    lines = {name: n for n, name in referenced_sources(text)}
    for name in names:
        if name not in unit.files and name not in generated:
            line = lines.get(name)
            where = f"{unit.spec}:{line}" if line else str(unit.spec)
            folder = unit.spec.parent
            if folder.name == "archive":
                folder = folder.parent
            raise SpecError(
                f"source file '{name}' is missing",
                where=where,
                hint=f"add {name} to {folder}/ or fix the Source line",
            )


def content_key(unit: SpecUnit, generated: Mapping[str, bytes], settings: Sequence[str]) -> str:
    """A digest of everything that decides the built packages' bytes."""
    h = hashlib.sha256()
    for part in settings:
        h.update(part.encode() + b"\0")
    h.update(b"spec\0" + unit.spec.read_bytes())
    for name, path in sorted(unit.files.items()):
        h.update(f"\0file {name}\0".encode() + path.read_bytes())
    spec_text = unit.spec.read_text(encoding="utf-8", errors="replace")
    for name, data in sorted(generated.items()):
        # only the generated sources this spec names can change its packages
        if name in spec_text:
            h.update(f"\0generated {name}\0".encode() + data)
    return h.hexdigest()
