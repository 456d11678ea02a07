"""The Web API gate: bearer tokens, 401 challenges, who a request runs as (spec §3.8, §10)."""

from __future__ import annotations

import time
import uuid

import pytest

from gtmsync.dataverse_local.security import DELEGATE, SALESPERSON, SYSTEM_ADMINISTRATOR
from gtmsync.dataverse_local.seed import SeedResult
from gtmsync.dataverse_local.server import ProvisionedApp, ProvisionedUser, ServerHandle


def user_token(server: ServerHandle, user: ProvisionedUser, *, now: float | None = None) -> str:
    token, _ = server.app.tokens.access_token(
        issuer=f"{server.authority}/",
        audience=server.org_url,
        tenant_id=server.tenant_id,
        object_id=user.object_id,
        app_id=str(uuid.uuid4()),
        scopes=("user_impersonation",),
        upn=user.entra.upn,
        now=now,
    )
    return token


def app_token(server: ServerHandle, client_id: str, service_principal_id: str) -> str:
    token, _ = server.app.tokens.access_token(
        issuer=f"{server.authority}/",
        audience=server.org_url,
        tenant_id=server.tenant_id,
        object_id=service_principal_id,
        app_id=client_id,
    )
    return token


def whoami(server: ServerHandle, token: str | None, version: str = "v9.2", **headers: str):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with server.client() as client:
        return client.get(f"/api/data/{version}/WhoAmI", headers=headers)


@pytest.fixture
def integration(dataverse: ServerHandle) -> ProvisionedApp:
    return dataverse.register_app("Integration", application_user_roles=(SYSTEM_ADMINISTRATOR,))


def integration_token(server: ServerHandle, app: ProvisionedApp) -> str:
    return app_token(server, app.client_id, app.registration.service_principal_id)


class TestChallenges:
    def expected_challenge(self, server: ServerHandle) -> str:
        host = server.org_url.removeprefix("https://")
        return (
            f"authorization_uri=https://{host}/{server.tenant_id}/oauth2/authorize, "
            f"resource_id=https://{host}/"
        )

    def test_missing_token(self, dataverse: ServerHandle):
        reply = whoami(dataverse, None)
        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == "Bearer " + self.expected_challenge(dataverse)
        assert reply.json()["error"]["code"]
        assert reply.headers["x-ms-service-request-id"]
        assert reply.headers["REQ_ID"] == reply.headers["x-ms-service-request-id"]

    def test_garbage_token(self, dataverse: ServerHandle):
        reply = whoami(dataverse, "not-a-jwt")
        assert reply.status_code == 401
        assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
        assert self.expected_challenge(dataverse) in reply.headers["WWW-Authenticate"]

    def test_expired_token(self, dataverse: ServerHandle):
        user = dataverse.add_user("Eli", "Expired")
        reply = whoami(dataverse, user_token(dataverse, user, now=time.time() - 7200))
        assert reply.status_code == 401
        assert "expired" in reply.json()["error"]["message"]
        assert 'error_description="The token is expired"' in reply.headers["WWW-Authenticate"]

    def test_wrong_audience(self, dataverse: ServerHandle):
        user = dataverse.add_user("Wes", "Wrongaud")
        token, _ = dataverse.app.tokens.access_token(
            issuer=f"{dataverse.authority}/",
            audience="https://other.crm.dynamics.com",
            tenant_id=dataverse.tenant_id,
            object_id=user.object_id,
            app_id=str(uuid.uuid4()),
            scopes=("user_impersonation",),
        )
        reply = whoami(dataverse, token)
        assert reply.status_code == 401
        assert "audience" in reply.json()["error"]["message"]

    def test_loopback_spellings_are_one_org(self, dataverse: ServerHandle):
        user = dataverse.add_user("Lou", "Loopback")
        port = dataverse.org_url.rsplit(":", 1)[1]
        token, _ = dataverse.app.tokens.access_token(
            issuer=f"{dataverse.authority}/",
            audience=f"https://localhost:{port}",
            tenant_id=dataverse.tenant_id,
            object_id=user.object_id,
            app_id="x",
            scopes=("user_impersonation",),
        )
        assert whoami(dataverse, token).status_code == 200

    def test_token_signed_by_another_key(self, dataverse: ServerHandle):
        from gtmsync.dataverse_local.tokens import TokenIssuer, load_or_create_signing_key

        stranger = TokenIssuer(load_or_create_signing_key(None))
        user = dataverse.add_user("Fay", "Forged")
        token, _ = stranger.access_token(
            issuer=f"{dataverse.authority}/",
            audience=dataverse.org_url,
            tenant_id=dataverse.tenant_id,
            object_id=user.object_id,
            app_id="x",
            scopes=("user_impersonation",),
        )
        assert whoami(dataverse, token).status_code == 401

    def test_user_without_systemuser_is_not_a_member(self, dataverse: ServerHandle):
        entra = dataverse.directory.add_user("Nobody Here", "nobody@contoso.local")
        token, _ = dataverse.app.tokens.access_token(
            issuer=f"{dataverse.authority}/",
            audience=dataverse.org_url,
            tenant_id=dataverse.tenant_id,
            object_id=entra.object_id,
            app_id="x",
            scopes=("user_impersonation",),
        )
        reply = whoami(dataverse, token)
        assert reply.status_code == 403
        assert reply.json()["error"]["message"].startswith(
            "The user is not a member of the organization"
        )

    def test_disabled_user_is_refused(self, dataverse: ServerHandle):
        user = dataverse.add_user("Dee", "Disabled", disabled=True)
        reply = whoami(dataverse, user_token(dataverse, user))
        assert reply.status_code == 403
        assert "disabled" in reply.json()["error"]["message"]


class TestRunsAs:
    @pytest.mark.parametrize("version", ["v9.0", "v9.1", "v9.2"])
    def test_user_token_runs_as_linked_systemuser(self, dataverse: ServerHandle, version: str):
        user = dataverse.add_user("Ula", "User")
        reply = whoami(dataverse, user_token(dataverse, user), version=version)
        assert reply.status_code == 200, reply.text
        assert reply.json()["UserId"] == str(user.systemuserid)
        assert reply.headers["x-ms-dop-hint"]
        assert int(reply.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) >= 0

    def test_app_token_runs_as_application_user(
        self, dataverse: ServerHandle, integration: ProvisionedApp
    ):
        reply = whoami(dataverse, integration_token(dataverse, integration))
        assert reply.status_code == 200
        assert reply.json()["UserId"] == str(integration.systemuserid)

    def test_msal_token_for_seeded_app(self, dataverse: ServerHandle, dataverse_seed: SeedResult):
        import msal

        client = msal.ConfidentialClientApplication(
            dataverse_seed.client_id,
            client_credential=dataverse_seed.client_secret,
            authority=dataverse.authority,
            instance_discovery=False,
        )
        token = client.acquire_token_for_client([f"{dataverse.org_url}/.default"])["access_token"]
        app_user = dataverse.store.find_systemuser(application_id=dataverse_seed.client_id)
        assert whoami(dataverse, token).json()["UserId"] == str(app_user["systemuserid"])


class TestImpersonation:
    def test_caller_object_id(self, dataverse: ServerHandle, integration: ProvisionedApp):
        target = dataverse.add_user("Ivy", "Impersonated")
        reply = whoami(
            dataverse, integration_token(dataverse, integration), CallerObjectId=target.object_id
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["UserId"] == str(target.systemuserid)

    def test_mscrm_caller_id(self, dataverse: ServerHandle, integration: ProvisionedApp):
        target = dataverse.add_user("Ike", "Legacy")
        reply = whoami(
            dataverse,
            integration_token(dataverse, integration),
            MSCRMCallerID=str(target.systemuserid),
        )
        assert reply.status_code == 200
        assert reply.json()["UserId"] == str(target.systemuserid)

    def test_needs_act_on_behalf_privilege(self, dataverse: ServerHandle):
        caller = dataverse.add_user("Cal", "Caller", roles=(SALESPERSON,))
        target = dataverse.add_user("Tia", "Target")
        reply = whoami(dataverse, user_token(dataverse, caller), CallerObjectId=target.object_id)
        assert reply.status_code == 403
        error = reply.json()["error"]
        assert error["code"] == "0x80040220"
        assert "prvActOnBehalfOfAnotherUser" in error["message"]

    def test_delegate_role_allows_and_privileges_intersect(self, dataverse: ServerHandle):
        caller = dataverse.add_user("Del", "Egate", roles=(SYSTEM_ADMINISTRATOR, DELEGATE))
        target = dataverse.add_user("Rae", "Reader", roles=("Read-only",))
        token = user_token(dataverse, caller)
        principal = dataverse.app.gate._principal(
            {
                "headers": [
                    (b"authorization", f"Bearer {token}".encode()),
                    (b"host", dataverse.org_url.removeprefix("https://").encode()),
                    (b"callerobjectid", target.object_id.encode()),
                ]
            }
        )
        assert principal.user_id == target.systemuserid
        assert principal.caller_id == caller.systemuserid
        from gtmsync.dataverse_local.principal import Access

        assert principal.can("account", Access.READ)
        assert not principal.can("account", Access.WRITE)

    def test_unknown_impersonated_user(self, dataverse: ServerHandle, integration: ProvisionedApp):
        reply = whoami(
            dataverse, integration_token(dataverse, integration), CallerObjectId=str(uuid.uuid4())
        )
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "0x80040217"


class TestTokenLifetime:
    def test_configurable_lifetime_and_expiry(self):
        from gtmsync.dataverse_local.tokens import (
            TokenError,
            TokenIssuer,
            load_or_create_signing_key,
        )

        issuer = TokenIssuer(load_or_create_signing_key(None), access_token_seconds=120)
        token, lifetime = issuer.access_token(
            issuer="https://idp/t/", audience="https://org", tenant_id="t", object_id="o",
            app_id="a", now=1_000_000.0,
        )  # fmt: skip
        assert lifetime == 120
        claims = issuer.verify(token, audiences={"https://org/"}, now=1_000_119.0)
        assert claims.expires_at == 1_000_120
        with pytest.raises(TokenError) as caught:
            issuer.verify(token, audiences={"https://org"}, now=1_000_120.0)
        assert caught.value.expired


class TestAdminProvisioning:
    def test_users_and_apps_for_out_of_process_harnesses(self, dataverse: ServerHandle):
        user = dataverse.admin(
            "POST", "/_admin/users", json={"first": "Har", "last": "Ness", "roles": ["Read-only"]}
        )
        assert user.status_code == 201
        body = user.json()
        row = dataverse.store.find_systemuser(aad_object_id=body["object_id"])
        assert str(row["systemuserid"]) == body["systemuserid"]
        app = dataverse.admin("POST", "/_admin/apps", json={"name": "Harness app"}).json()
        with dataverse.client() as client:
            issued = client.post(
                f"/{dataverse.tenant_id}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": app["client_id"],
                    "client_secret": app["client_secret"],
                    "scope": f"{dataverse.org_url}/.default",
                },
            ).json()
        who = whoami(dataverse, issued["access_token"])
        assert who.json()["UserId"] == app["systemuserid"]

    def test_bad_body_names_the_fields(self, dataverse: ServerHandle):
        reply = dataverse.admin("POST", "/_admin/users", json={"first": "Only"})
        assert reply.status_code == 400
        assert "first, last" in reply.json()["error"]
        unknown_role = dataverse.admin(
            "POST", "/_admin/users", json={"first": "Ro", "last": "Le", "roles": ["Nope"]}
        )
        assert unknown_role.status_code == 400
