"""Schemathesis over the OpenAPI schema: no input to any operation gets a 5xx.

Runs in-process against the ASGI app of a two-org world (tests/security/world.py), as org A's
admin with an API token (the caller who may reach every operation, on a connected org so the
Dynamics-backed operations run for real against the local server). One test per operation,
parametrised from the schema itself, so a new operation is fuzzed without a list. The CI run
keeps a few examples per operation; `@pytest.mark.slow` runs many more (`make test-long`).

Schemathesis's own pytest integration (`from_fixture(...).parametrize()`) runs operations as
subtests that this pytest version cannot report, so each test draws cases from the
operation's Hypothesis strategy directly (`APIOperation.as_strategy()`), the documented
building block under that integration.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import BaseSchema

from gtmsync.settings import Mode, Settings
from gtmsync.web.app import create_app
from tests.fixtures.web import TEST_SECRET_KEY
from tests.security.world import World, bearer

pytestmark = pytest.mark.xdist_group("security-fuzz")
SCHEMA_PATH = "/api/v1/openapi.json"


def _operations() -> list[tuple[str, str]]:
    app = create_app(
        Settings(
            database_url="sqlite://",
            secret_key=TEST_SECRET_KEY,
            mode=Mode.DEVELOPMENT,
            _env_file=None,  # type: ignore[call-arg]
        )
    )
    try:
        schema = schemathesis.openapi.from_asgi(SCHEMA_PATH, app)
        return sorted(
            (op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())
        )
    finally:
        app.state.engine.dispose()


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def api_schema(world: World) -> BaseSchema:
    return schemathesis.openapi.from_asgi(SCHEMA_PATH, world.app)


def _fuzz(world: World, schema: BaseSchema, method: str, path: str, examples: int) -> None:
    operation = schema[path][method]
    headers = bearer(world.a.admin_token)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        assert response.status_code < 500, (
            f"{method} {case.formatted_path} {case.query or ''} {case.body!r:.300} -> "
            f"{response.status_code}: {response.text[:500]}"
        )

    run()


def test_every_operation_is_fuzzed() -> None:
    assert ("GET", "/api/v1/exports/{export_id}") in OPERATIONS
    assert len(OPERATIONS) >= 50


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_gets_a_5xx(world: World, api_schema: BaseSchema, method: str, path: str) -> None:
    _fuzz(world, api_schema, method, path, examples=6)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_gets_a_5xx_long(
    world: World, api_schema: BaseSchema, method: str, path: str
) -> None:
    _fuzz(world, api_schema, method, path, examples=150)


class TestFoundByFuzzing:
    """Inputs schemathesis found answering 500; each is now a 4xx naming the field."""

    def test_saved_search_of_an_unknown_object(self, world: World) -> None:
        with TestClient(world.app) as http:
            response = http.post(
                "/api/v1/search/saved",
                json={"name": "x", "object": "0.1.0", "params": []},
                headers=bearer(world.a.admin_token),
            )
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "object"

    def test_import_budget_beyond_the_column(self, world: World) -> None:
        with TestClient(world.app) as http:
            response = http.put(
                "/api/v1/imports/settings",
                json={"daily_budget": 53506095724929386283008, "object_limits": {"x": -1}},
                headers=bearer(world.a.admin_token),
            )
        assert response.status_code == 422, response.text
        assert response.json()["field"].startswith(("daily_budget", "object_limits"))

    def test_nul_characters_are_a_400_not_a_500(self, world: World) -> None:
        """PostgreSQL refuses NUL in text (SQLite stores it): either way, never a 5xx."""
        headers = bearer(world.a.admin_token)
        with TestClient(world.app) as http:
            listed = http.get(
                "/api/v1/audit-events", params={"action_prefix": "a\x00b"}, headers=headers
            )
            created = http.post("/api/v1/api-tokens", json={"name": "nul\x00name"}, headers=headers)
        postgres = world.app.state.engine.dialect.name == "postgresql"
        assert listed.status_code == (400 if postgres else 200), listed.text
        assert created.status_code == (400 if postgres else 201), created.text
        if postgres:
            assert "NUL" in created.json()["error"]
