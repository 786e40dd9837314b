"""The BSI's CSAF validator library (tools/csaf-validator) as the tests call it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = REPO_ROOT / "tools" / "csaf-validator"
#: what the document tests may report as informative findings (docs/advisories.md)
EXPECTED_INFORMATIVE = {"informativeTest_6_3_4"}  # missing CWE: the records carry none


def run_validator(*args: str) -> dict[str, Any]:
    """``node validate.mjs ARGS``: the library's results as JSON."""
    if not (VALIDATOR / "node_modules" / "@secvisogram").is_dir():
        pytest.fail(
            "the CSAF validator library is not installed: run ./bootstrap.sh test "
            "(or: cd tools/csaf-validator && npm ci --no-audit --no-fund)"
        )
    node = shutil.which("node")
    assert node is not None, "nodejs is not installed"
    done = subprocess.run(
        [node, "validate.mjs", *args],
        cwd=VALIDATOR,
        capture_output=True,
        text=True,
        timeout=300,  # loading the library takes ~10 s of CPU
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def findings(result: dict[str, Any], group: str) -> dict[str, list[str]]:
    """test name -> its error and warning messages, for one group of tests."""
    return {
        f["test"]: [m["message"] for m in f["errors"] + f["warnings"]]
        for f in result[group]
        if f["errors"] or f["warnings"]
    }


def informative(result: dict[str, Any]) -> set[str]:
    return {f["test"] for f in result["informative"]}
