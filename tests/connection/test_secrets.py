"""Tokens never appear in logs, pages, API responses or the database in plain text.

The tokens checked are the ones the local identity provider really issued to this
connection: read from the MSAL cache after unsealing it (the only place they exist in clear),
before and after a refresh rotates them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.connection import gateway, token_store
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from tests.connection.conftest import DynamicsOrg, connect_as
from tests.fixtures.web import Login


def _issued_tokens(app: FastAPI, dynamics_org: DynamicsOrg) -> set[str]:
    with session_scope(app.state.session_factory) as session:
        integration = gateway.require_integration(session, dynamics_org.org_id)
        assert integration.token_cache is not None
        cache = json.loads(token_store.unseal(app.state.settings, integration.token_cache))
    tokens = {
        str(entry["secret"])
        for section in ("AccessToken", "RefreshToken", "IdToken")
        for entry in cache.get(section, {}).values()
    }
    assert len(tokens) >= 3, cache.keys()
    return tokens


def _database_dump(app: FastAPI) -> str:
    """Every row of every table, every column, as text."""
    engine: sa.Engine = app.state.engine
    metadata = sa.MetaData()
    metadata.reflect(engine)
    parts: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


def test_tokens_never_leak(
    app: FastAPI,
    dataverse: ServerHandle,
    dynamics_org: DynamicsOrg,
    login_as: Callable[[Login], TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="gtmsync")
    caplog.set_level(logging.INFO)
    avery = login_as(dynamics_org.avery)
    assert connect_as(avery, dataverse, dynamics_org.avery.email).status_code == 303
    tokens = _issued_tokens(app, dynamics_org)

    dataverse.app.expire_tokens()  # the next call refreshes: MSAL rotates both tokens
    with (
        session_scope(app.state.session_factory) as session,
        gateway.client_for(session, dynamics_org.org_id, settings=app.state.settings) as client,
    ):
        client.who_am_i()
    rotated = _issued_tokens(app, dynamics_org)
    assert rotated - tokens, "the refresh should have issued new tokens"
    tokens |= rotated

    responses = [
        avery.get(path).text
        for path in (
            "/admin/integrations/connections?tab=connected",
            "/admin/integrations/dynamics",
            "/admin/integrations/dynamics/user-mapping",
            "/admin/audit-log",
            "/settings/integrations",
            "/api/v1/connection",
            "/api/v1/connection/user-mappings",
            "/api/v1/audit-events",
        )
    ]
    dump = _database_dump(app)
    assert "avery.admin@contoso.local" in dump  # the dump really holds the connection rows
    for token in tokens:
        assert token not in dump, "a token is stored in clear"
        assert token not in caplog.text, "a token was logged"
        for text in responses:
            assert token not in text, "a token was rendered"
    assert len(caplog.records) > 10  # the grep above ran over the real request logs
