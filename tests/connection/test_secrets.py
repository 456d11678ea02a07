"""Tokens never appear in logs, pages, API responses or the database in plain text.

The tokens checked are the ones the local identity provider really issued to this
connection: read from the MSAL cache after unsealing it (the only place they exist in clear),
before and after a refresh rotates them. tests/security/test_secrets.py checks the same and
more secrets (client secret, API tokens, signing key) in the real hub process and its log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.connection import gateway
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from tests.connection.conftest import DynamicsOrg, connect_as
from tests.fixtures.web import Login
from tests.security.leaks import database_dump, issued_tokens


def _issued_tokens(app: FastAPI, dynamics_org: DynamicsOrg) -> set[str]:
    return issued_tokens(app.state.settings, app.state.session_factory, dynamics_org.org_id)


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
    dump = database_dump(app.state.engine)
    assert "avery.admin@contoso.local" in dump  # the dump really holds the connection rows
    for token in tokens:
        assert token not in dump, "a token is stored in clear"
        assert token not in caplog.text, "a token was logged"
        for text in responses:
            assert token not in text, "a token was rendered"
    assert len(caplog.records) > 10  # the grep above ran over the real request logs
