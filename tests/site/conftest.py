"""Fixtures of the site tests: one site project and one live server per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.site.site_support import SiteProject, live_server, make_site_project


@pytest.fixture(scope="session")
def site_project(tmp_path_factory: pytest.TempPathFactory) -> SiteProject:
    return make_site_project(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="session")
def site_url(site_project: SiteProject) -> Iterator[str]:
    from repotool.site.app import create_app

    with live_server(create_app(site_project.cfg)) as url:
        yield url
