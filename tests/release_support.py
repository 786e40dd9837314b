"""Helpers of the release tests (tests/test_release_*.py, tests/repo/): a spec's
Release raised with a changelog entry, a small unsigned package."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def bump_release(spec: Path) -> str:
    """Release: +1 and a %changelog entry on top; returns the new VERSION-RELEASE."""
    text = spec.read_text()
    m = re.search(r"^Release:\s*(\d+)", text, re.M)
    assert m
    new = int(m.group(1)) + 1
    text = text.replace(m.group(0), m.group(0).replace(m.group(1), str(new)), 1)
    version = re.search(r"^Version:\s*(\S+)", text, re.M)
    assert version
    entry = (
        f"* Thu Apr 17 2014 pS-Performance Toolkit release team <release@perfsonar.invalid>"
        f" - {version.group(1)}-{new}\n- Test update\n\n"
    )
    text = text.replace("%changelog\n", "%changelog\n" + entry, 1)
    spec.write_text(text)
    return f"{version.group(1)}-{new}"


def make_rpm(tmp: Path, name: str, *, extra_header: str = "") -> Path:
    """An unsigned noarch package NAME-1.0-1.el7 (rpmbuild), one file /etc/NAME."""
    top = tmp / f"top-{name}"
    for sub in ("SOURCES", "BUILD", "RPMS", "SRPMS", "SPECS"):
        (top / sub).mkdir(parents=True, exist_ok=True)
    spec = top / f"{name}.spec"
    spec.write_text(
        f"Name: {name}\nVersion: 1.0\nRelease: 1.el7\nSummary: test\nLicense: MIT\n"
        f"BuildArch: noarch\n{extra_header}\n%description\ntest\n%install\nmkdir -p "
        f"%{{buildroot}}/etc\necho hi > %{{buildroot}}/etc/{name}\n%files\n/etc/{name}\n"
    )
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--nodeps",
            "--define",
            f"_topdir {top}",
            "--define",
            "_binary_payload w9.gzdio",
            str(spec),
        ],
        check=True,
        capture_output=True,
    )
    return next((top / "RPMS").rglob("*.rpm"))
