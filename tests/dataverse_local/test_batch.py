"""$batch: framing, change sets, Content-ID references, errors (spec §4)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import pytest

from tests.fixtures.dataverse_store import BASE, DataverseTestClient


def request_part(
    method: str,
    url: str,
    body: object | None = None,
    content_id: int | None = None,
    headers: Iterable[str] = (),
) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1", *headers]
    if body is not None:
        lines += ["Content-Type: application/json; type=entry", "", json.dumps(body)]
    else:
        lines += [""]
    return "\r\n".join(lines)


def changeset(boundary: str, parts: list[str]) -> str:
    inner = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--"
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n{inner}'


def batch(
    client: DataverseTestClient, items: list[str], *, prefer: str | None = None
) -> tuple[int, str, str]:
    body = "".join(f"--batch_AAA123\r\n{item}\r\n" for item in items) + "--batch_AAA123--\r\n"
    headers = {
        "Content-Type": 'multipart/mixed; boundary="batch_AAA123"',
        "Accept": "application/json",
    }
    if prefer:
        headers["Prefer"] = prefer
    response = client.post("$batch", content=body.encode(), headers=headers)
    return response.status_code, response.headers["Content-Type"], response.text


def statuses(text: str) -> list[str]:
    return re.findall(r"HTTP/1\.1 (\d{3})", text)


class TestBatch:
    def test_three_url_forms_and_framing(self, dv_client: DataverseTestClient) -> None:
        status, content_type, text = batch(
            dv_client,
            [
                request_part("POST", f"{BASE}/leads", {"subject": "absolute"}),
                request_part("POST", "/api/data/v9.2/tasks", {"subject": "root-relative"}),
                request_part("POST", "accounts", {"name": "relative"}),
                request_part("GET", f"{BASE}/accounts?$select=name"),
            ],
        )
        assert status == 200
        assert content_type.startswith("multipart/mixed; boundary=batchresponse_")
        boundary = content_type.split("boundary=")[1]
        assert text.count(f"--{boundary}") == 5
        assert text.rstrip().endswith(f"--{boundary}--")
        assert statuses(text) == ["204", "204", "204", "200"]
        assert text.count("Location: ") == 3
        assert text.count("OData-EntityId: ") == 3
        assert (
            "Content-Type: application/json; odata.metadata=minimal; odata.streaming=true" in text
        )
        assert '"name": "relative"' in text

    def test_change_set_with_content_id_references(self, dv_client: DataverseTestClient) -> None:
        cs = changeset(
            "changeset_BBB456",
            [
                request_part("POST", f"{BASE}/leads", {"subject": "lead"}, content_id=1),
                request_part(
                    "POST",
                    f"{BASE}/leads",
                    {"subject": "follow-up", "originatingleadid@odata.bind": "$1"},
                    content_id=6,
                ),
                request_part("POST", f"{BASE}/accounts", {"name": "Acme"}, content_id=2),
                request_part(
                    "PATCH", "$2", {"telephone1": "555"}, content_id=3, headers=["If-Match: *"]
                ),
                request_part(
                    "POST",
                    f"{BASE}/tasks",
                    {"subject": "t", "regardingobjectid_account_task@odata.bind": "$2"},
                    content_id=4,
                ),
                request_part("PUT", "$2/name", {"value": "Acme 2"}, content_id=5),
            ],
        )
        status, _, text = batch(dv_client, [cs])
        assert status == 200, text
        assert "Content-Type: multipart/mixed; boundary=changesetresponse_" in text
        assert statuses(text) == ["204"] * 6
        assert [int(c) for c in re.findall(r"Content-ID: (\d+)", text)] == [1, 6, 2, 3, 4, 5]
        follow_up = dv_client.get(
            "leads?$filter=subject eq 'follow-up'&$select=_originatingleadid_value"
        ).json()["value"][0]
        assert follow_up["_originatingleadid_value"] is not None
        account = dv_client.get(
            "accounts?$select=name,telephone1&$expand=Account_Tasks($select=subject)"
        ).json()["value"][0]
        assert (account["name"], account["telephone1"], len(account["Account_Tasks"])) == (
            "Acme 2",
            "555",
            1,
        )

    def test_failed_change_set_rolls_back_and_answers_with_one_part(
        self, dv_client: DataverseTestClient
    ) -> None:
        cs = changeset(
            "changeset_C",
            [
                request_part("POST", f"{BASE}/tasks", {"subject": "Task 1 in batch"}, content_id=1),
                request_part("POST", f"{BASE}/tasks", {"subject": "x" * 201}, content_id=2),
            ],
        )
        status, _, text = batch(dv_client, [cs])
        assert status == 400
        assert statuses(text) == ["400"]
        assert "changesetresponse" not in text
        assert (
            "The length of the 'subject' attribute of the 'task' entity exceeded the maximum "
            "allowed length of '200'." in text
        )
        assert dv_client.get("tasks/$count").text == "0"

    def test_failed_change_set_forgets_its_metadata_changes(
        self, dv_client: DataverseTestClient
    ) -> None:
        column = {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "new_Temp",
            "MaxLength": 10,
        }
        cs = changeset(
            "changeset_M",
            [
                request_part(
                    "POST",
                    f"{BASE}/EntityDefinitions(LogicalName='account')/Attributes",
                    column,
                    content_id=1,
                ),
                request_part(
                    "POST", f"{BASE}/accounts", {"name": "A", "new_temp": "x" * 11}, content_id=2
                ),
            ],
        )
        status, _, text = batch(dv_client, [cs])
        assert status == 400, text
        missing = dv_client.get(
            "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='new_temp')"
        )
        assert missing.status_code == 404
        assert dv_client.post("accounts", json={"name": "B", "new_temp": "y"}).status_code == 400
        assert dv_client.post("accounts", json={"name": "C"}).status_code == 204

    def test_stops_at_first_failure_without_continue_on_error(
        self, dv_client: DataverseTestClient
    ) -> None:
        status, _, text = batch(
            dv_client,
            [
                request_part("POST", f"{BASE}/tasks", {"subject": "ok"}),
                request_part("POST", f"{BASE}/tasks", {"subject": "x" * 201}),
                request_part("POST", f"{BASE}/tasks", {"subject": "never"}),
            ],
        )
        assert status == 400
        assert statuses(text) == ["204", "400"]
        assert '"code": "0x80044331"' in text
        assert dv_client.get("tasks/$count").text == "1"

    def test_continue_on_error(self, dv_client: DataverseTestClient) -> None:
        status, _, text = batch(
            dv_client,
            [
                request_part("POST", f"{BASE}/tasks", {"subject": "x" * 201}),
                request_part("POST", f"{BASE}/tasks", {"subject": "second"}),
            ],
            prefer="odata.continue-on-error",
        )
        assert status == 200
        assert statuses(text) == ["400", "204"]
        assert dv_client.get("tasks/$count").text == "1"

    def test_forward_reference_is_rejected(self, dv_client: DataverseTestClient) -> None:
        cs = changeset("changeset_D", [request_part("PATCH", "$1", {"name": "x"}, content_id=1)])
        status, _, text = batch(dv_client, [cs])
        assert status == 400
        assert "Content-ID Reference: '$1' does not exist in the batch context." in text

    def test_change_set_parts_need_content_id(self, dv_client: DataverseTestClient) -> None:
        cs = changeset("changeset_F", [request_part("POST", f"{BASE}/accounts", {"name": "A"})])
        status, _, text = batch(dv_client, [cs])
        assert status == 400
        assert "Content-ID header not present" in text
        assert dv_client.get("accounts/$count").text == "0"

    def test_get_not_allowed_in_change_set(self, dv_client: DataverseTestClient) -> None:
        cs = changeset("changeset_E", [request_part("GET", f"{BASE}/accounts", content_id=1)])
        status, _, _ = batch(dv_client, [cs])
        assert status == 400

    @pytest.mark.parametrize(("count", "expected"), [(1000, 200), (1001, 400)])
    def test_thousand_request_cap(
        self, dv_client: DataverseTestClient, count: int, expected: int
    ) -> None:
        status, _, _ = batch(dv_client, [request_part("GET", "WhoAmI()")] * count)
        assert status == expected
