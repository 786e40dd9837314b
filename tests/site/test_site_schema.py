"""Property-based tests of the JSON API against its own OpenAPI schema (schemathesis),
in-process: schemathesis calls the ASGI app directly."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from tests.site.site_support import SiteProject


def test_api_conforms_to_its_schema_and_never_fails(site_project: SiteProject) -> None:
    from repotool.site.app import create_app

    schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app(site_project.cfg))
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema is invalid: {result.err()}"
        operations.append(result.ok())
    assert {op.label for op in operations} == {
        "GET /api/releases",
        "GET /api/releases/{version}",
        "GET /api/advisories",
        "GET /api/advisories/{advisory_id}",
    }
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            # every check: no 5xx, documented status codes, content types and bodies
            case.call_and_validate()

        check()
