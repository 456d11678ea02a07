"""MSAL flows against the local identity provider over HTTPS: PKCE sign-in, silent refresh
from a caller-held cache, reconnect-needed, client credentials and impersonation."""

from __future__ import annotations

import html
import re
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from gtmsync.dataverse import (
    AuthCodeFlow,
    ClientCredentials,
    DataverseClient,
    DelegatedTokens,
    MsalAuth,
    MsalConfig,
    ReconnectRequiredError,
    SignedIn,
    TransportError,
    org_scope,
)
from gtmsync.dataverse_local.security import SYSTEM_ADMINISTRATOR
from tests.dataverse.conftest import LocalOrg

REDIRECT = "http://localhost:8000/connection/callback"


def sign_in(
    local_org: LocalOrg,
    config: MsalConfig,
    object_id: str,
    mode: Literal["query", "form_post"] = "query",
) -> SignedIn:
    """Start the flow, pick the account and accept consent as a browser would, then redeem."""
    flow = AuthCodeFlow(
        config,
        scopes=[org_scope(local_org.server.org_url, delegated=True)],
        redirect_uri=REDIRECT,
        response_mode=mode,
    )
    started = flow.start()
    assert "code_challenge=" in started["auth_uri"]
    with httpx.Client(verify=local_org.server.ssl_context()) as browser:
        answer = browser.post(started["auth_uri"], data={"user": object_id, "consent": "accept"})
    if mode == "form_post":
        assert answer.status_code == 200, answer.text
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', answer.text))
        return flow.finish(started, {k: html.unescape(v) for k, v in fields.items()})
    assert answer.status_code in {302, 303}, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT)
    return flow.finish(started, dict(parse_qsl(urlsplit(location).query)))


@pytest.fixture
def delegated(local_org: LocalOrg) -> tuple[MsalConfig, str, object]:
    app = local_org.server.register_app(
        "gtmsync delegated", redirect_uris=(REDIRECT,), application_user_roles=None
    )
    user = local_org.server.add_user("Ada", "Admin", roles=(SYSTEM_ADMINISTRATOR,))
    config = MsalConfig(
        app.client_id,
        authority=local_org.server.authority,
        client_secret=app.secret,
        verify=str(local_org.server.ca_bundle),
        instance_discovery=False,
    )
    return config, user.object_id, user


def delegated_client(
    local_org: LocalOrg, config: MsalConfig, signed: SignedIn, saved: list[str]
) -> DataverseClient:
    tokens = DelegatedTokens(
        config,
        scopes=[org_scope(local_org.server.org_url, delegated=True)],
        cache_state=signed.cache_state,
        account_id=signed.account_id,
        on_cache_change=saved.append,
    )
    return DataverseClient(
        local_org.server.org_url, auth=MsalAuth(tokens), verify=local_org.server.ssl_context()
    )


class TestDelegatedSignIn:
    def test_pkce_sign_in_then_silent_refresh_after_expiry(
        self, local_org: LocalOrg, delegated: tuple[MsalConfig, str, object]
    ) -> None:
        config, object_id, user = delegated
        signed = sign_in(local_org, config, object_id)
        assert signed.object_id == object_id
        saved: list[str] = []
        with delegated_client(local_org, config, signed, saved) as client:
            assert client.who_am_i().user_id == user.systemuserid  # type: ignore[attr-defined]
            local_org.server.app.expire_tokens()
            assert client.who_am_i().user_id == user.systemuserid  # type: ignore[attr-defined]
        assert saved, "a refreshed token cache must be handed back for encrypted storage"
        assert signed.cache_state not in saved

    def test_form_post_response_mode(
        self, local_org: LocalOrg, delegated: tuple[MsalConfig, str, object]
    ) -> None:
        config, object_id, user = delegated
        signed = sign_in(local_org, config, object_id, mode="form_post")
        with delegated_client(local_org, config, signed, []) as client:
            assert client.who_am_i().user_id == user.systemuserid  # type: ignore[attr-defined]

    def test_revoked_refresh_token_means_reconnect(
        self, local_org: LocalOrg, delegated: tuple[MsalConfig, str, object]
    ) -> None:
        config, object_id, _ = delegated
        signed = sign_in(local_org, config, object_id)
        local_org.server.directory.revoke_refresh_tokens(object_id=object_id)
        local_org.server.app.expire_tokens()
        client = delegated_client(local_org, config, signed, [])
        with client, pytest.raises(ReconnectRequiredError, match="sign in to Dynamics again"):
            client.who_am_i()

    def test_empty_cache_means_reconnect(
        self, local_org: LocalOrg, delegated: tuple[MsalConfig, str, object]
    ) -> None:
        config, _, _ = delegated
        tokens = DelegatedTokens(
            config, scopes=[org_scope(local_org.server.org_url, delegated=True)], cache_state=None
        )
        with pytest.raises(ReconnectRequiredError, match="no signed-in account"):
            tokens.token(force_refresh=False)
        tokens.close()


class TestImpersonation:
    def test_application_user_acts_for_a_person(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        person = local_org.server.add_user("Sam", "Seller", roles=(SYSTEM_ADMINISTRATOR,))
        account_id = dv.with_caller(person.object_id).create("accounts", {"name": "on behalf"})
        record = dv.retrieve(
            "accounts", account_id, select=["_createdby_value", "_createdonbehalfby_value"]
        )
        created_by = record.lookup("createdby")
        on_behalf = record.lookup("createdonbehalfby")
        assert created_by is not None
        assert on_behalf is not None
        assert created_by.id == person.systemuserid
        assert on_behalf.id == local_org.app.systemuserid


class TestIdentityProviderDown:
    def test_unreachable_authority_is_a_transient_transport_error(self) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = MsalConfig(
            "client",
            authority=f"https://127.0.0.1:{port}/t",
            client_secret="s",
            instance_discovery=False,
        )
        tokens = ClientCredentials(config, scope="https://org.crm.dynamics.com/.default")
        with pytest.raises(TransportError) as caught:
            tokens.token(force_refresh=False)
        assert caught.value.transient
        tokens.close()


class TestConfiguration:
    def test_plain_http_authority_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must be https"):
            MsalConfig("client", authority="http://127.0.0.1:1/tenant")

    def test_instance_discovery_only_for_microsoft_hosts(self) -> None:
        assert MsalConfig("c").discovers_instance
        assert not MsalConfig("c", authority="https://127.0.0.1:9/t").discovers_instance

    def test_org_scope(self) -> None:
        assert org_scope("https://org.crm.dynamics.com/", delegated=True) == (
            "https://org.crm.dynamics.com/user_impersonation"
        )
        assert org_scope("https://org.crm.dynamics.com", delegated=False) == (
            "https://org.crm.dynamics.com/.default"
        )


class TestTrust:
    def test_the_chosen_ca_bundle_wins_over_requests_environment_variables(
        self, local_org: LocalOrg, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Many machines set REQUESTS_CA_BUNDLE to the system store; requests would let it
        replace the session's bundle and the local CA would no longer be trusted."""
        import certifi

        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
        monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
        token = local_org.tokens().token(force_refresh=False)
        assert token.count(".") == 2  # a JWT from the local server, over verified TLS
