"""Fixtures of the site tests: one exported site project, its app in-process, and one
live server for the tests that need a socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import DnfHost
from tests.records.errata_repos import Repos, build_repos, install_vulnerable
from tests.site.site_support import (
    InProcessClient,
    SiteProject,
    export_site,
    live_server,
    make_site_project,
)


@pytest.fixture(scope="session")
def site_project(tmp_path_factory: pytest.TempPathFactory) -> SiteProject:
    project = make_site_project(tmp_path_factory.mktemp("site"))
    export_site(project)
    return project


@pytest.fixture(scope="session")
def site(site_project: SiteProject) -> InProcessClient:
    from repotool.site.app import create_app

    return InProcessClient(create_app(site_project.cfg))


@pytest.fixture(scope="session")
def site_url(site_project: SiteProject) -> Iterator[str]:
    from repotool.site.app import create_app

    with live_server(create_app(site_project.cfg)) as url:
        yield url


# the dnf errata set-up (tests/records/errata_repos.py), as the records tests have it


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    """el6 and el7 repositories built from the specs, with our updateinfo."""
    return build_repos(tmp_path_factory.mktemp("errata"))


@pytest.fixture
def host(repos: Repos, dnf_host: DnfHost) -> DnfHost:
    """A host with the vulnerable builds installed from the el7 repository."""
    return install_vulnerable(repos, dnf_host)
