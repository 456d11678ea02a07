"""Fault injection: 429 storms, 5xx, latency, dropped connections, mid-$batch drops, expiry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from gtmsync.dataverse_local.faults import (
    FaultConfigError,
    FaultInjector,
    FaultRule,
    load_plan,
    truncate_batch,
)
from gtmsync.dataverse_local.server import ServerHandle
from tests.dataverse_local.test_auth import user_token, whoami


@pytest.fixture
def token(dataverse: ServerHandle) -> str:
    return user_token(
        dataverse, dataverse.add_user("Fal", "Tolerant", roles=("System Administrator",))
    )


def batch_of_creates(names: list[str], boundary: str = "batch_faults") -> tuple[str, str]:
    parts = "".join(
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        f"Content-ID: {i + 1}\r\n\r\nPOST /api/data/v9.2/accounts HTTP/1.1\r\n"
        f"Content-Type: application/json\r\n\r\n{json.dumps({'name': name})}\r\n"
        for i, name in enumerate(names)
    )
    return parts + f"--{boundary}--\r\n", f"multipart/mixed; boundary={boundary}"


def accounts_named(server: ServerHandle, names: list[str]) -> set[str]:
    table = server.store.tables["account"]
    with server.store.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.name).where(table.c.name.in_(names)))
        return {r[0] for r in rows}


class TestRespondingFaults:
    def test_throttle_storm_for_the_next_n_requests(self, dataverse: ServerHandle, token: str):
        dataverse.admin(
            "POST", "/_admin/faults", json={"kind": "throttle", "count": 2, "retry_after": 7}
        )
        replies = [whoami(dataverse, token) for _ in range(3)]
        assert [r.status_code for r in replies] == [429, 429, 200]
        assert replies[0].headers["Retry-After"] == "7"
        assert replies[0].json()["error"]["code"] == "0x80072322"
        assert dataverse.admin("GET", "/_admin/faults").json()["injected"] == {"throttle": 2}

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    def test_server_errors(self, dataverse: ServerHandle, token: str, status: int):
        dataverse.faults.add(FaultRule(kind="error", status=status, count=1))
        reply = whoami(dataverse, token)
        assert reply.status_code == status
        assert reply.json()["error"]["message"]
        assert whoami(dataverse, token).status_code == 200

    def test_rate_is_deterministic_for_a_seed(self, dataverse: ServerHandle, token: str):
        def run() -> list[int]:
            dataverse.admin("DELETE", "/_admin/faults?seed=42")
            dataverse.admin("POST", "/_admin/faults", json={"kind": "error", "rate": 0.5})
            return [whoami(dataverse, token).status_code for _ in range(12)]

        first, second = run(), run()
        assert first == second
        assert set(first) == {200, 503}

    def test_method_and_path_matching(self, dataverse: ServerHandle, token: str):
        dataverse.faults.add(FaultRule(kind="error", status=500, method="POST", path=r"/accounts$"))
        with dataverse.client(headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.get("/api/data/v9.2/accounts?$top=1").status_code == 200
            assert client.post("/api/data/v9.2/accounts", json={"name": "x"}).status_code == 500
        assert whoami(dataverse, token).status_code == 200

    def test_latency_is_injected_and_counted(self, dataverse: ServerHandle, token: str):
        dataverse.faults.add(FaultRule(kind="latency", latency_ms=5, latency_max_ms=20, count=2))
        assert [whoami(dataverse, token).status_code for _ in range(3)] == [200, 200, 200]
        assert dataverse.faults.describe()["injected"] == {"latency": 2}

    def test_admin_rejects_bad_rules_naming_the_field(self, dataverse: ServerHandle):
        reply = dataverse.admin("POST", "/_admin/faults", json={"kind": "error", "status": 418})
        assert reply.status_code == 400
        assert reply.json()["error"].startswith("status:")
        assert dataverse.admin("POST", "/_admin/faults", json={"kind": "meteor"}).status_code == 400


class TestDroppedConnections:
    def test_drop_mid_response_is_a_transport_error(self, dataverse: ServerHandle, token: str):
        dataverse.faults.add(FaultRule(kind="drop", count=1, path="WhoAmI"))
        with pytest.raises(httpx.TransportError):
            whoami(dataverse, token)
        assert whoami(dataverse, token).status_code == 200
        assert dataverse.faults.describe()["injected"] == {"drop": 1}

    def test_drop_mid_batch_keeps_the_earlier_writes(self, dataverse: ServerHandle, token: str):
        names = [f"Batch drop {uuid.uuid4().hex[:8]} #{i}" for i in range(3)]
        body, content_type = batch_of_creates(names)
        dataverse.faults.add(FaultRule(kind="drop_batch", after_operations=2, count=1))
        with (
            dataverse.client(headers={"Authorization": f"Bearer {token}"}) as client,
            pytest.raises(httpx.TransportError),
        ):
            client.post(
                "/api/data/v9.2/$batch", content=body, headers={"Content-Type": content_type}
            )
        assert accounts_named(dataverse, names) == set(names[:2])


class TestTokenExpiry:
    def test_every_earlier_token_is_refused_then_new_ones_work(
        self, dataverse: ServerHandle, token: str
    ):
        assert whoami(dataverse, token).status_code == 200
        dataverse.admin("POST", "/_admin/faults", json={"kind": "token_expiry"})
        expired = whoami(dataverse, token)
        assert expired.status_code == 401
        assert "expired" in expired.json()["error"]["message"]
        user = dataverse.add_user("Fal", "Tolerant")
        assert whoami(dataverse, user_token(dataverse, user)).status_code == 200


class TestPlans:
    def test_load_plan_from_file_and_text(self, tmp_path: Path):
        plan = [{"kind": "throttle", "count": 3}, {"kind": "latency", "latency_ms": 10}]
        path = tmp_path / "faults.json"
        path.write_text(json.dumps({"rules": plan}))
        assert [r.kind for r in load_plan(path)] == ["throttle", "latency"]
        assert [r.kind for r in load_plan(str(path))] == ["throttle", "latency"]
        assert [r.count for r in load_plan(json.dumps(plan))] == [3, None]

    def test_unknown_field_names_the_choices(self):
        with pytest.raises(FaultConfigError, match="unknown fault field"):
            FaultRule.from_dict({"kind": "error", "statu": 500})

    def test_bad_regex_names_the_field(self):
        with pytest.raises(FaultConfigError, match="path"):
            FaultRule.from_dict({"kind": "error", "path": "("})

    def test_count_limits_firing(self):
        injector = FaultInjector([FaultRule(kind="error", count=2)])
        fired = [bool(injector.decide("GET", "/api/data/v9.2/x").respond) for _ in range(4)]
        assert fired == [True, True, False, False]

    def test_truncate_batch_keeps_first_parts(self):
        body, content_type = batch_of_creates(["a", "b", "c"], boundary="b1")
        kept = truncate_batch(body.encode(), content_type, 1).decode()
        assert kept.count("Content-Type: application/http") == 1
        assert '"a"' in kept
        assert kept.endswith("--b1--\r\n")
