"""Fixtures of the mirror tests: the upstream repositories and a fault-injecting server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mirror.mirror_fixtures import FaultServer, Repos, build_repos, serve


@pytest.fixture(scope="session")
def mirror_repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    return build_repos(tmp_path_factory.getbasetemp())


@pytest.fixture
def fault_server(mirror_repos: Repos) -> Iterator[FaultServer]:
    yield from serve(mirror_repos.gen1)
