"""MSAL 1.39, unmodified, against the local identity provider over HTTPS (spec §10.3)."""

from __future__ import annotations

import html
import re
import urllib.parse

import msal
import pytest

from gtmsync.dataverse_local.seed import SeedResult
from gtmsync.dataverse_local.server import ProvisionedApp, ProvisionedUser, ServerHandle

REDIRECT = "http://localhost:8765/callback"


def _confidential(server: ServerHandle, app: ProvisionedApp) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=app.secret,
        authority=server.authority,
        instance_discovery=False,
    )


def _sign_in(
    server: ServerHandle, auth_uri: str, user: ProvisionedUser, *, tenant_wide: bool = False
) -> dict[str, str]:
    """Drive the authorize pages like a browser; return the redirect's query parameters."""
    with server.client() as client:
        page = client.get(auth_uri)
        assert page.status_code == 200
        assert user.entra.display_name in page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None
        url = action.group(1).replace("&amp;", "&")
        reply = client.post(url, data={"user": user.object_id})
        if reply.status_code == 200 and "Permissions requested" in reply.text:
            form = {"user": user.object_id, "consent": "accept"}
            if tenant_wide:
                form["tenant_wide"] = "true"
            reply = client.post(url, data=form)
    if reply.status_code == 302:
        location = reply.headers["location"]
        assert location.startswith(REDIRECT)
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert reply.status_code == 200, reply.text
    assert f'action="{REDIRECT}"' in reply.text  # form_post: the page posts to the app
    return {
        html.unescape(k): html.unescape(v)
        for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', reply.text)
    }


class TestClientCredentials:
    def test_token_for_org_default_scope(self, dataverse: ServerHandle, dataverse_seed: SeedResult):
        app = msal.ConfidentialClientApplication(
            dataverse_seed.client_id,
            client_credential=dataverse_seed.client_secret,
            authority=dataverse.authority,
            instance_discovery=False,
        )
        result = app.acquire_token_for_client(scopes=[f"{dataverse.org_url}/.default"])
        assert "access_token" in result, result
        assert result["token_type"] == "Bearer"
        claims = dataverse.app.tokens.verify(result["access_token"], audiences={dataverse.org_url})
        assert claims.app_id == dataverse_seed.client_id
        assert claims.tenant_id == dataverse.tenant_id
        assert claims.is_app
        again = app.acquire_token_for_client(scopes=[f"{dataverse.org_url}/.default"])
        assert again["token_source"] == "cache"

    def test_wrong_secret_is_invalid_client(
        self, dataverse: ServerHandle, dataverse_seed: SeedResult
    ):
        app = msal.ConfidentialClientApplication(
            dataverse_seed.client_id,
            client_credential="not-the-secret",
            authority=dataverse.authority,
            instance_discovery=False,
        )
        result = app.acquire_token_for_client(scopes=[f"{dataverse.org_url}/.default"])
        assert result["error"] == "invalid_client"
        assert 7000215 in result["error_codes"]

    def test_user_impersonation_scope_is_invalid_for_apps(
        self, dataverse: ServerHandle, dataverse_seed: SeedResult
    ):
        app = msal.ConfidentialClientApplication(
            dataverse_seed.client_id,
            client_credential=dataverse_seed.client_secret,
            authority=dataverse.authority,
            instance_discovery=False,
        )
        result = app.acquire_token_for_client(scopes=[f"{dataverse.org_url}/user_impersonation"])
        assert result["error"] == "invalid_scope"
        assert result["error_codes"] == [70011]

    def test_unknown_resource_is_refused(self, dataverse: ServerHandle, dataverse_seed: SeedResult):
        app = msal.ConfidentialClientApplication(
            dataverse_seed.client_id,
            client_credential=dataverse_seed.client_secret,
            authority=dataverse.authority,
            instance_discovery=False,
        )
        result = app.acquire_token_for_client(scopes=["https://other.crm.dynamics.com/.default"])
        assert result["error"] == "invalid_resource"
        assert result["error_codes"] == [500011]

    def test_http_basic_client_authentication(
        self, dataverse: ServerHandle, dataverse_seed: SeedResult
    ):
        with dataverse.client() as client:
            reply = client.post(
                f"/{dataverse.tenant_id}/oauth2/v2.0/token",
                data={"grant_type": "client_credentials", "scope": f"{dataverse.org_url}/.default"},
                auth=(dataverse_seed.client_id, dataverse_seed.client_secret),
            )
        assert reply.status_code == 200
        assert reply.json()["expires_in"] > 3000


class TestAuthorizationCode:
    @pytest.fixture
    def app(self, dataverse: ServerHandle) -> ProvisionedApp:
        return dataverse.register_app(
            "Consent test app",
            redirect_uris=(REDIRECT,),
            multi_tenant=True,
            application_user_roles=None,
        )

    def test_code_flow_with_pkce_refresh_and_revocation(self, dataverse: ServerHandle):
        registered = dataverse.register_app(
            "Per-user consent app",
            redirect_uris=(REDIRECT,),
            requires_admin_consent=False,
            application_user_roles=None,
        )
        user = dataverse.add_user("Quinn", "Flow")
        client = _confidential(dataverse, registered)
        scopes = [f"{dataverse.org_url}/user_impersonation"]
        flow = client.initiate_auth_code_flow(
            scopes, redirect_uri=REDIRECT, response_mode="form_post"
        )
        assert "code_challenge=" in flow["auth_uri"]
        query = _sign_in(dataverse, flow["auth_uri"], user)
        result = client.acquire_token_by_auth_code_flow(flow, query)
        assert "access_token" in result, result
        assert result["refresh_token"]
        assert result["id_token_claims"]["preferred_username"] == user.entra.upn
        claims = dataverse.app.tokens.verify(result["access_token"], audiences={dataverse.org_url})
        assert claims.object_id == user.object_id
        with dataverse.client() as http:
            who = http.get(
                "/api/data/v9.2/WhoAmI",
                headers={"Authorization": f"Bearer {result['access_token']}"},
            )
        assert who.json()["UserId"] == str(user.systemuserid)  # runs as the signed-in user
        assert claims.scopes == ("user_impersonation",)
        assert claims.app_id == registered.client_id

        account = client.get_accounts(username=user.entra.upn)[0]
        refreshed = client.acquire_token_silent(scopes, account=account, force_refresh=True)
        assert refreshed is not None
        assert "access_token" in refreshed, refreshed
        assert refreshed["access_token"] != result["access_token"]
        rotated = client.acquire_token_by_refresh_token(result["refresh_token"], scopes)
        assert rotated["error"] == "invalid_grant"  # refresh tokens rotate on use

        revoked = dataverse.admin(
            "POST", "/_admin/refresh-tokens/revoke", json={"object_id": user.object_id}
        )
        assert revoked.json()["revoked"] >= 1
        after = client.acquire_token_silent_with_error(scopes, account=account, force_refresh=True)
        assert after is not None
        assert after["error"] == "invalid_grant"
        assert 50173 in after["error_codes"]

    def test_code_is_single_use(self, dataverse: ServerHandle):
        registered = dataverse.register_app(
            "Single use",
            redirect_uris=(REDIRECT,),
            requires_admin_consent=False,
            application_user_roles=None,
        )
        user = dataverse.add_user("Uma", "Once")
        client = _confidential(dataverse, registered)
        flow = client.initiate_auth_code_flow(
            [f"{dataverse.org_url}/user_impersonation"],
            redirect_uri=REDIRECT,
            response_mode="form_post",
        )
        query = _sign_in(dataverse, flow["auth_uri"], user)
        assert "access_token" in client.acquire_token_by_auth_code_flow(dict(flow), query)
        again = client.acquire_token_by_auth_code_flow(dict(flow), query)
        assert again["error"] == "invalid_grant"
        assert 54005 in again["error_codes"]

    def test_wrong_pkce_verifier_is_refused(self, dataverse: ServerHandle):
        registered = dataverse.register_app(
            "PKCE",
            redirect_uris=(REDIRECT,),
            requires_admin_consent=False,
            application_user_roles=None,
        )
        user = dataverse.add_user("Vic", "Verifier")
        client = _confidential(dataverse, registered)
        flow = client.initiate_auth_code_flow(
            [f"{dataverse.org_url}/user_impersonation"],
            redirect_uri=REDIRECT,
            response_mode="form_post",
        )
        query = _sign_in(dataverse, flow["auth_uri"], user)
        flow["code_verifier"] = "x" * 50
        result = client.acquire_token_by_auth_code_flow(flow, query)
        assert result["error"] == "invalid_grant"
        assert 501481 in result["error_codes"]

    def test_non_admin_needs_admin_consent_then_admin_grants_for_everyone(
        self, dataverse: ServerHandle, app: ProvisionedApp
    ):
        seller = dataverse.add_user("Nia", "Nonadmin")
        admin = dataverse.add_user("Gia", "Globaladmin", global_admin=True)
        client = _confidential(dataverse, app)
        scopes = [f"{dataverse.org_url}/user_impersonation"]

        flow = client.initiate_auth_code_flow(
            scopes, redirect_uri=REDIRECT, response_mode="form_post"
        )
        refused = _sign_in(dataverse, flow["auth_uri"], seller)
        assert refused["error"] == "access_denied"
        assert refused["error_description"].startswith("AADSTS65001")
        assert refused["state"] == flow["state"]

        flow = client.initiate_auth_code_flow(
            scopes, redirect_uri=REDIRECT, response_mode="form_post"
        )
        granted = _sign_in(dataverse, flow["auth_uri"], admin, tenant_wide=True)
        assert "access_token" in client.acquire_token_by_auth_code_flow(flow, granted)
        assert dataverse.directory.has_tenant_consent(app.client_id)

        flow = client.initiate_auth_code_flow(
            scopes, redirect_uri=REDIRECT, response_mode="form_post"
        )
        query = _sign_in(dataverse, flow["auth_uri"], seller)
        assert "code" in query
        assert "access_token" in client.acquire_token_by_auth_code_flow(flow, query)


class TestDiscovery:
    def test_openid_configuration_and_keys(self, dataverse: ServerHandle):
        with dataverse.client() as client:
            for tenant in (dataverse.tenant_id, "common", "organizations", "contoso.local"):
                doc = client.get(f"/{tenant}/v2.0/.well-known/openid-configuration").json()
                assert doc["issuer"] == f"{dataverse.authority}/v2.0"
                assert doc["token_endpoint"] == f"{dataverse.authority}/oauth2/v2.0/token"
            keys = client.get(doc["jwks_uri"]).json()["keys"]
            unknown = client.get("/fabrikam.example/v2.0/.well-known/openid-configuration")
        assert keys[0]["kty"] == "RSA"
        assert keys[0]["kid"] == dataverse.app.tokens.key_id
        assert unknown.status_code == 400
        assert unknown.json()["error_codes"] == [90002]

    def test_oidc_authority_issuer_matches(
        self, dataverse: ServerHandle, dataverse_seed: SeedResult
    ):
        app = msal.ConfidentialClientApplication(
            dataverse_seed.client_id,
            client_credential=dataverse_seed.client_secret,
            oidc_authority=f"{dataverse.authority}/v2.0",
        )
        assert "access_token" in app.acquire_token_for_client([f"{dataverse.org_url}/.default"])

    def test_unregistered_redirect_uri_shows_an_error_page(
        self, dataverse: ServerHandle, dataverse_seed: SeedResult
    ):
        with dataverse.client() as client:
            reply = client.get(
                f"/{dataverse.tenant_id}/oauth2/v2.0/authorize",
                params={
                    "client_id": dataverse_seed.client_id,
                    "response_type": "code",
                    "redirect_uri": "https://evil.example/cb",
                    "scope": f"{dataverse.org_url}/user_impersonation openid",
                },
            )
        assert reply.status_code == 400
        assert "AADSTS50011" in reply.text


class TestAdminConsent:
    def test_global_admin_grants_and_non_admin_is_refused(self, dataverse: ServerHandle):
        registered = dataverse.register_app(
            "Admin consent app",
            redirect_uris=(REDIRECT,),
            multi_tenant=True,
            application_user_roles=None,
        )
        seller = dataverse.add_user("Olu", "Ordinary")
        admin = dataverse.add_user("Ada", "Globe", global_admin=True)
        url = f"{dataverse.authority}/adminconsent?" + urllib.parse.urlencode(
            {"client_id": registered.client_id, "redirect_uri": REDIRECT, "state": "s1"}
        )
        with dataverse.client() as client:
            refused = client.post(url, data={"user": seller.object_id})
            page = client.post(url, data={"user": admin.object_id})
            granted = client.post(url, data={"user": admin.object_id, "consent": "accept"})
        refused_query = dict(
            urllib.parse.parse_qsl(urllib.parse.urlsplit(refused.headers["location"]).query)
        )
        assert refused_query["error"] == "permission_denied"
        assert "Permissions requested" in page.text
        granted_query = dict(
            urllib.parse.parse_qsl(urllib.parse.urlsplit(granted.headers["location"]).query)
        )
        assert granted_query == {
            "admin_consent": "True",
            "tenant": dataverse.tenant_id,
            "state": "s1",
        }
        assert dataverse.directory.has_tenant_consent(registered.client_id)
