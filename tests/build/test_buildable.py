"""What specs/ builds, told without building: rpmspec on the real specs, and the
pure comparison with what advisories and repositories name."""

from __future__ import annotations

from pathlib import Path

from repotool.build.buildable import parse_query, spec_packages, unbuildable
from repotool.config import load_config
from repotool.evr import NEVRA
from repotool.process import SubprocessRunner
from tests.conftest import make_project


def test_the_real_specs_build_what_the_shipped_advisories_name(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    cfg = load_config(project / "repotool.toml")
    found = spec_packages(cfg, SubprocessRunner())
    assert found.unreadable == {}
    el7 = found.built_by["el7"]
    security = project / "specs/perfsonar-toolkit-security"
    assert el7[NEVRA("perfsonar-toolkit-security", 0, "3.3.2", "2.el7", "noarch")] == (
        security / "perfsonar-toolkit-security.spec"
    )
    assert el7[NEVRA("perfsonar-toolkit-security", 0, "3.3.2", "1.el7", "noarch")] == (
        security / "archive/perfsonar-toolkit-security-3.3.2-1.spec"
    )
    assert len(el7) == len(found.built_by["el6"]) == 8


def test_a_package_no_spec_builds_gets_the_archive_path_or_the_spec_to_bring_back() -> None:
    specs = Path("/p/specs")
    built = {"el7": {NEVRA("a", 0, "1", "3.el7", "noarch"): specs / "a/a.spec"}}
    named = {
        "el7": {
            NEVRA("a", 0, "1", "3.el7", "noarch"): {"named by X"},
            NEVRA("a", 0, "1", "2.el7", "noarch"): {"held by the published el7 repository"},
            NEVRA("gone", 0, "2", "1.el7", "noarch"): {"named by PSSA-1 (f.md:3)"},
        }
    }
    found = unbuildable(named, built, specs, root=Path("/p"))
    assert [str(u.nevra) for u in found] == ["a-1-2.el7.noarch", "gone-2-1.el7.noarch"]
    assert found[0].fix == (
        "specs/ builds a 1-3.el7 only; keep the spec that built 1-2 as "
        "specs/a/archive/a-1-2.spec (e.g. from git history), as specs/README.md "
        "'Bumping a component' says"
    )
    assert found[1].fix == (
        "no spec builds gone at all; bring its spec back as specs/gone/gone.spec "
        "(e.g. from git history)"
    )
    assert found[1].message.startswith(
        "gone-2-1.el7.noarch (el7), named by PSSA-1 (f.md:3), is built by no spec under specs/"
    )


def test_rpmspec_query_lines_are_read_and_noise_is_skipped() -> None:
    text = "a|0|1.0|1.el7|noarch\nwarning: something\nb|2|3|4.el6|x86_64\n"
    assert parse_query(text) == [
        NEVRA("a", 0, "1.0", "1.el7", "noarch"),
        NEVRA("b", 2, "3", "4.el6", "x86_64"),
    ]
