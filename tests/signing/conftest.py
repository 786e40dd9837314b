"""Fixtures of the signing tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, free_port, make_project, release_json, start_server
from tests.signing.signing_support import without_media


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, Server]]:
    port = free_port()
    project = make_project(tmp_path / "project", base_url=f"http://127.0.0.1:{port}")
    without_media(project)
    release_json(project)
    server = start_server(project, port)
    yield project, server
    server.stop()
