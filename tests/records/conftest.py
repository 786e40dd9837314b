"""Fixtures of the records tests: the dnf errata set-up of tests/records/errata_repos.py."""

from __future__ import annotations

import pytest

from tests.conftest import DnfHost
from tests.records.errata_repos import Repos, build_repos, install_vulnerable


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    """el6 and el7 repositories built from the specs, with our updateinfo."""
    return build_repos(tmp_path_factory.mktemp("errata"))


@pytest.fixture
def host(repos: Repos, dnf_host: DnfHost) -> DnfHost:
    """A host with the vulnerable builds installed from the el7 repository."""
    return install_vulnerable(repos, dnf_host)
