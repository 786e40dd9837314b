"""The toolkit specs state their real requirements, as on CentOS (issue 11 item 2):
built with rpmbuild, `rpm -qp --requires` names the base packages each component
uses, no spec skips a dependency, and every base requirement is a capability the
Debian demo base's provides package proves."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from repotool.media.provides import load_profile

SPECS = Path(__file__).resolve().parents[2] / "specs"
TOOLKIT = sorted(SPECS.glob("perfsonar-toolkit*/*.spec")) + sorted(
    SPECS.glob("perfsonar-toolkit*/archive/*.spec")
)
#: what each package of the toolkit needs from the base system, per target
BASE_REQUIRES = {
    "perfsonar-toolkit-3.3.2-1": {"/bin/sh", "httpd", "iperf3", "mod_ssl", "systemd"},
    "perfsonar-toolkit-firewall-3.3.2-1": {"/bin/sh", "iptables", "systemd"},
    "perfsonar-toolkit-ntp-3.3.2-1": {"/bin/sh", "ntp", "systemd"},
    "perfsonar-toolkit-ntp-3.3.1-1": {"/bin/sh", "ntp", "systemd"},
    "perfsonar-toolkit-security-3.3.2-2": {"/bin/sh", "httpd", "mod_ssl", "openssl", "systemd"},
    "perfsonar-toolkit-security-3.3.2-1": {"/bin/sh", "httpd", "mod_ssl", "openssl", "systemd"},
    "perfsonar-toolkit-sysctl-3.3.2-1": set(),
}


def build(spec: Path, dist: str, top: Path) -> Path:
    """rpmbuild of one spec as the hand check in specs/README.md does it."""
    sources = top / "SOURCES"
    shutil.rmtree(sources, ignore_errors=True)
    sources.mkdir(parents=True)
    folder = spec.parent.parent if spec.parent.name == "archive" else spec.parent
    for f in folder.iterdir():
        if f.is_file():
            shutil.copy2(f, sources / f.name)
    done = subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", f"dist {dist}", str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(top), "LC_ALL": "C.UTF-8"},
    )
    assert done.returncode == 0, f"{spec} ({dist}):\n{done.stderr[-2000:]}"
    (rpm,) = (
        line.split("Wrote: ", 1)[1]
        for line in done.stdout.splitlines()
        if line.startswith("Wrote: ")
    )
    return Path(rpm)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """dist -> NAME-VERSION-RELEASE (without dist) -> the built package."""
    top = tmp_path_factory.mktemp("rpmbuild")
    out: dict[str, dict[str, Path]] = {}
    for dist in (".el7", ".el6"):
        for spec in TOOLKIT:
            rpm = build(spec, dist, top)
            out.setdefault(dist, {})[rpm.name.split(f"{dist}.noarch.rpm")[0]] = rpm
    return out


def requires(rpm: Path) -> set[str]:
    text = subprocess.run(
        ["rpm", "-qp", "--requires", str(rpm)], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def base_requires(rpm: Path) -> set[str]:
    """What a package needs that neither rpm itself nor the toolkit gives."""
    return {r for r in requires(rpm) if not r.startswith(("rpmlib(", "config(", "perfsonar-"))}


def test_no_spec_skips_a_dependency() -> None:
    assert TOOLKIT, SPECS
    for spec in TOOLKIT:
        text = spec.read_text()
        assert "__requires_exclude" not in text, spec
        assert "AutoReq" not in text, spec


def test_every_spec_has_a_group_tag_for_el6s_rpm() -> None:
    for spec in TOOLKIT:  # (perfsonar-release: its own owner)
        assert any(line.startswith("Group:") for line in spec.read_text().splitlines()), spec


def test_el7_packages_require_what_they_use_from_the_base(
    built: dict[str, dict[str, Path]],
) -> None:
    el7 = built[".el7"]
    assert set(el7) == set(BASE_REQUIRES)
    for nvr, rpm in el7.items():
        assert base_requires(rpm) == BASE_REQUIRES[nvr], nvr
    toolkit = requires(el7["perfsonar-toolkit-3.3.2-1"])
    assert {
        "perfsonar-release",
        "perfsonar-toolkit-ntp",
        "perfsonar-toolkit-firewall",
        "perfsonar-toolkit-security",
        "perfsonar-toolkit-sysctl",
    } <= toolkit


def test_el6_packages_do_not_require_systemd(built: dict[str, dict[str, Path]]) -> None:
    for nvr, rpm in built[".el6"].items():
        assert base_requires(rpm) == BASE_REQUIRES[nvr] - {"systemd"}, nvr


def test_every_base_requirement_is_a_capability_of_each_base_profile(
    built: dict[str, dict[str, Path]],
) -> None:
    needed = set().union(*(base_requires(rpm) for rpm in built[".el7"].values()))
    assert needed == {"/bin/sh", "httpd", "iperf3", "iptables", "mod_ssl", "ntp", "openssl"} | {
        "systemd"
    }
    for profile in ("debian12", "el7"):
        missing = needed - set(load_profile(profile).capabilities)
        assert not missing, f"{profile} lacks {sorted(missing)}"


def test_units_are_enabled_by_shipped_links_not_scriptlets(
    built: dict[str, dict[str, Path]],
) -> None:
    for nvr, rpm in built[".el7"].items():
        scripts = subprocess.run(
            ["rpm", "-qp", "--scripts", str(rpm)], capture_output=True, text=True, check=True
        ).stdout
        assert scripts.strip() == "", f"{nvr} has scriptlets:\n{scripts}"
    files = subprocess.run(
        ["rpm", "-qpl", str(built[".el7"]["perfsonar-toolkit-3.3.2-1"])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "/usr/lib/systemd/system/multi-user.target.wants/perfsonar-iperf3.service" in files
    assert "/usr/lib/systemd/system-generators/perfsonar-toolkit" in files
