"""Identity endpoints in-process on SQLite and PostgreSQL: query response mode, PKCE, refresh."""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse

import jwt
import pytest

from tests.fixtures.dataverse import InProcessDataverse

REDIRECT = "http://localhost:9000/cb"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(dv: InProcessDataverse, client_id: str, challenge: str, **extra: str) -> str:
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "response_mode": "query",
        "scope": f"{dv.org_url}/user_impersonation openid profile offline_access",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"/{dv.tenant_id}/oauth2/v2.0/authorize?" + urllib.parse.urlencode(params)


def redirect_query(location: str) -> dict[str, str]:
    assert location.startswith(REDIRECT)
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def token(dv: InProcessDataverse, **form: str):
    return dv.client.post(f"/{dv.tenant_id}/oauth2/v2.0/token", data=form)


class TestCodeFlowByHand:
    def test_query_mode_code_pkce_tokens_and_rotation(
        self, dataverse_local_app: InProcessDataverse
    ):
        dv = dataverse_local_app
        app = dv.app.register_app(
            "Hand", redirect_uris=(REDIRECT,), requires_admin_consent=False,
            application_user_roles=None,
        )  # fmt: skip
        user = dv.app.add_user("Hana", "Hand")
        verifier, challenge = pkce()
        url = authorize_url(dv, app.client_id, challenge)
        page = dv.client.get(url)
        assert user.entra.upn in page.text
        consent = dv.client.post(url, data={"user": user.object_id})
        assert "Permissions requested" in consent.text
        assert "on behalf of your organization" not in consent.text  # not a global admin
        done = dv.client.post(
            url, data={"user": user.object_id, "consent": "accept"}, follow_redirects=False
        )
        assert done.status_code == 302
        query = redirect_query(done.headers["location"])
        assert query["state"] == "st-1"

        issued = token(
            dv, grant_type="authorization_code", client_id=app.client_id,
            client_secret=app.secret or "", code=query["code"], redirect_uri=REDIRECT,
            code_verifier=verifier, client_info="1",
        ).json()  # fmt: skip
        assert issued["token_type"] == "Bearer"
        assert issued["scope"] == f"{dv.org_url}/user_impersonation"
        assert issued["client_info"]
        keys = dv.client.get(f"/{dv.tenant_id}/discovery/v2.0/keys").json()["keys"]
        id_claims = jwt.decode(
            issued["id_token"],
            jwt.PyJWK(keys[0]).key,
            algorithms=["RS256"],
            audience=app.client_id,
            issuer=f"{dv.org_url}/{dv.tenant_id}/v2.0",
        )
        assert id_claims["nonce"] == "n-1"
        assert id_claims["preferred_username"] == user.entra.upn

        second = dv.client.post(url, data={"user": user.object_id}, follow_redirects=False)
        assert second.status_code == 302  # consent remembered: straight back with a code

        refreshed = token(
            dv, grant_type="refresh_token", client_id=app.client_id,
            client_secret=app.secret or "", refresh_token=issued["refresh_token"],
            scope=f"{dv.org_url}/user_impersonation offline_access",
        )  # fmt: skip
        assert refreshed.status_code == 200
        reused = token(
            dv, grant_type="refresh_token", client_id=app.client_id,
            client_secret=app.secret or "", refresh_token=issued["refresh_token"],
        )  # fmt: skip
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"

    def test_cancel_consent_is_access_denied(self, dataverse_local_app: InProcessDataverse):
        dv = dataverse_local_app
        app = dv.app.register_app(
            "Cancel", redirect_uris=(REDIRECT,), requires_admin_consent=False,
            application_user_roles=None,
        )  # fmt: skip
        user = dv.app.add_user("Cal", "Cancel")
        url = authorize_url(dv, app.client_id, pkce()[1])
        reply = dv.client.post(
            url, data={"user": user.object_id, "consent": "cancel"}, follow_redirects=False
        )
        query = redirect_query(reply.headers["location"])
        assert query["error"] == "access_denied"
        assert query["error_description"].startswith("AADSTS65004")

    def test_disabled_users_are_not_listed_and_cannot_sign_in(
        self, dataverse_local_app: InProcessDataverse
    ):
        dv = dataverse_local_app
        app = dv.app.register_app("Dis", redirect_uris=(REDIRECT,), application_user_roles=None)
        gone = dv.app.add_user("Gon", "Away", disabled=True)
        url = authorize_url(dv, app.client_id, pkce()[1])
        assert gone.entra.upn not in dv.client.get(url).text
        refused = dv.client.post(url, data={"user": gone.object_id})
        assert refused.status_code == 400
        assert "AADSTS50057" in refused.text

    def test_unsupported_response_type_redirects_with_error(
        self, dataverse_local_app: InProcessDataverse
    ):
        dv = dataverse_local_app
        app = dv.app.register_app("Rt", redirect_uris=(REDIRECT,), application_user_roles=None)
        url = authorize_url(dv, app.client_id, pkce()[1], response_type="token")
        reply = dv.client.get(url, follow_redirects=False)
        assert redirect_query(reply.headers["location"])["error"] == "unsupported_response_type"


class TestTokenEndpointErrors:
    @pytest.mark.parametrize(
        ("form", "error", "code"),
        [
            ({"grant_type": "password"}, "unsupported_grant_type", 70003),
            ({"grant_type": "client_credentials"}, "invalid_request", 900144),
            (
                {
                    "grant_type": "client_credentials",
                    "client_id": "00000000-0000-0000-0000-000000000000",
                },
                "unauthorized_client",
                700016,
            ),
        ],
    )
    def test_error_shape(
        self, dataverse_local_app: InProcessDataverse, form: dict[str, str], error: str, code: int
    ):
        reply = token(dataverse_local_app, **form)
        body = reply.json()
        assert reply.status_code == 400
        assert body["error"] == error
        assert body["error_codes"] == [code]
        assert body["error_description"].startswith(f"AADSTS{code}:")
        assert {"timestamp", "trace_id", "correlation_id"} <= body.keys()

    def test_missing_secret_is_invalid_client_401(self, dataverse_local_app: InProcessDataverse):
        dv = dataverse_local_app
        app = dv.app.register_app("Nosecret", application_user_roles=None)
        reply = token(
            dv, grant_type="client_credentials", client_id=app.client_id,
            scope=f"{dv.org_url}/.default",
        )  # fmt: skip
        assert reply.status_code == 401
        assert reply.json()["error_codes"] == [7000218]

    def test_multi_tenant_app_needs_tenant_consent_for_client_credentials(
        self, dataverse_local_app: InProcessDataverse
    ):
        dv = dataverse_local_app
        app = dv.app.register_app("Saas", multi_tenant=True)
        form = {
            "grant_type": "client_credentials", "client_id": app.client_id,
            "client_secret": app.secret or "", "scope": f"{dv.org_url}/.default",
        }  # fmt: skip
        assert token(dv, **form).json()["error_codes"] == [700016]
        admin = dv.app.add_user("Ada", "Tenantadmin", global_admin=True)
        dv.app.directory.grant_consent(app.client_id, granted_by=admin.object_id, tenant_wide=True)
        granted = token(dv, **form).json()
        who = dv.client.get(
            "/api/data/v9.2/WhoAmI", headers={"Authorization": f"Bearer {granted['access_token']}"}
        )
        assert who.status_code == 200
        assert who.json()["UserId"] == str(app.systemuserid)
