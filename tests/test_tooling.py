"""The contributor's tooling holds: lint, format, types, and the size limits of the layout.

Each check runs the pinned tool from requirements.lock (installed by ./bootstrap.sh) on
the whole tree, so a change that breaks one fails the suite, not only a pre-commit hook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: the most modules directly under repotool/ (the pipeline's stages live in packages)
MAX_TOP_LEVEL_MODULES = 12
#: a module past this many lines is asking to be split along a real seam
MAX_MODULE_LINES = 450
#: the worst cyclomatic-complexity grade radon may give a function
WORST_GRADE = "C"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ruff_lint_is_clean() -> None:
    done = _run("ruff", "check", "--no-cache", "repotool", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = _run("ruff", "format", "--check", "--no-cache", ".")  # code blocks in docs too
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_on_code_and_tests() -> None:
    done = _run("mypy", "--strict", "repotool", "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_layout_limits() -> None:
    top = sorted(p.name for p in (ROOT / "repotool").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"{len(top)} modules at the top: {top}"
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "repotool").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_more_complex_than_grade_c() -> None:
    worse = chr(ord(WORST_GRADE) + 1)
    done = _run("radon", "cc", "--json", "-n", worse, "repotool")
    assert done.returncode == 0, done.stderr
    found = {
        f"{path}:{block['lineno']} {block['name']}": f"{block['rank']} ({block['complexity']})"
        for path, blocks in json.loads(done.stdout).items()
        for block in blocks
    }
    assert not found, f"functions graded worse than {WORST_GRADE}: {found}"


def test_no_test_module_imports_from_another_test_module() -> None:
    """Shared helpers and fixtures live in conftest.py and *_support.py modules: a test
    module imported by another runs its tests twice and ties them together."""
    import re

    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*(from|import)\s+tests(\.\w+)*\.test_\w+", line)
    ]
    assert not offenders, "\n".join(offenders)
