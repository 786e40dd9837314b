"""One NEVRA type: the records, the repository index and the metadata reader agree."""

from __future__ import annotations

import dataclasses

import pytest

from repotool.evr import EVR, NEVRA
from repotool.records.fields import FixedPackage
from repotool.repo.packages import RepoPackage


def _repo_package(epoch: int) -> RepoPackage:
    return RepoPackage(
        "perfsonar-toolkit-ntp-3.3.2-1.el7.noarch.rpm",
        "perfsonar-toolkit-ntp",
        epoch,
        "3.3.2",
        "1.el7",
        "noarch",
        "ab" * 32,
        (0, 1),
        (1, 2, 3, 4),
        ("", "", ""),
    )


def test_an_advisorys_package_and_a_repository_package_are_the_same_value() -> None:
    fixed = FixedPackage(name="perfsonar-toolkit-ntp", evr="3.3.2-1.el7")
    assert fixed.nevra == _repo_package(0).nevra
    assert type(fixed.nevra) is type(_repo_package(0).nevra) is NEVRA
    assert fixed.nevra in {_repo_package(0).nevra}
    assert FixedPackage(name="perfsonar-toolkit-ntp", evr="1:3.3.2-1.el7").nevra == (
        _repo_package(1).nevra
    )


def test_a_text_epoch_is_a_number_and_the_names_read_as_rpm_writes_them() -> None:
    # createrepo_c gives the epoch as text ("0", or "" when there is none)
    assert NEVRA("a", "0", "1", "2", "noarch") == NEVRA("a", 0, "1", "2", "noarch")  # type: ignore[arg-type]
    assert NEVRA("a", "", "1", "2", "noarch").epoch == 0  # type: ignore[arg-type]
    n = NEVRA("perfsonar-toolkit-ntp", 1, "3.3.2", "1.el7", "noarch")
    assert str(n) == "perfsonar-toolkit-ntp-1:3.3.2-1.el7.noarch"
    assert n.filename == "perfsonar-toolkit-ntp-3.3.2-1.el7.noarch.rpm"
    assert n.evr == EVR(1, "3.3.2", "1.el7")
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.name = "other"  # type: ignore[misc]
