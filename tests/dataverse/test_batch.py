"""$batch encode/decode with Microsoft's documented shapes, mapped back to the caller's items."""

from __future__ import annotations

import uuid

import pytest

from gtmsync.dataverse import batch as batchlib
from gtmsync.dataverse.batch import BatchOperation, ChangeSet
from gtmsync.dataverse.errors import BatchFormatError, ValidationError

ROOT = "https://org.crm.dynamics.com/api/data/v9.2"
TASK_ID = "a59c24a5-8493-e811-a964-000d3a300000"

# Microsoft's batch documentation response (spec §4): a change set with one create, then a GET.
MICROSOFT_RESPONSE = f"""--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f
Content-Type: multipart/mixed; boundary=changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc

--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: {ROOT}/tasks({TASK_ID})
OData-EntityId: {ROOT}/tasks({TASK_ID})


--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc--
--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 200 OK
Content-Type: application/json; odata.metadata=minimal; odata.streaming=true
OData-Version: 4.0

{{"@odata.context":"{ROOT}/$metadata#tasks(subject)","value":[{{"subject":"Task 1 in batch"}}]}}
--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f--
""".replace("\n", "\r\n").encode()

MICROSOFT_ERROR = b"""--batchresponse_156da4b8-cd55-4a1b-a1ed-ae5ac6d0ea56
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 400 Bad Request
REQ_ID: 5ecd1cb3-1730-4ffc-909c-d44c22270026
Content-Type: application/json; odata.metadata=minimal
OData-Version: 4.0

{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the \
'subject' attribute of the 'task' entity exceeded the maximum allowed length of '200'."}}
--batchresponse_156da4b8-cd55-4a1b-a1ed-ae5ac6d0ea56--
"""


class TestEncode:
    def test_change_set_with_content_ids_and_reference(self) -> None:
        items = [
            ChangeSet(
                [
                    BatchOperation("POST", "accounts", {"name": "A"}),
                    BatchOperation("PATCH", "$1", {"telephone1": "1"}, {"If-Match": "*"}),
                ]
            ),
            BatchOperation("GET", "accounts?$select=name"),
        ]
        content_type, body = batchlib.encode(items, ROOT, boundary="batch_x")
        text = body.decode()
        assert content_type == 'multipart/mixed; boundary="batch_x"'
        assert (
            "Content-ID: 1\r\n\r\nPOST https://org.crm.dynamics.com/api/data/v9.2/accounts HTTP/1.1"
            in text
        )
        assert "Content-ID: 2\r\n\r\nPATCH $1 HTTP/1.1\r\nIf-Match: *\r\n" in text
        assert "Content-Type: application/json; type=entry" in text
        assert f"GET {ROOT}/accounts?$select=name HTTP/1.1" in text
        assert text.rstrip().endswith("--batch_x--")

    def test_content_ids_are_unique_across_change_sets(self) -> None:
        items = [
            ChangeSet([BatchOperation("POST", "accounts", {"name": str(i)})]) for i in range(3)
        ]
        _, body = batchlib.encode(items, ROOT)
        assert [line for line in body.decode().splitlines() if line.startswith("Content-ID")] == [
            "Content-ID: 1",
            "Content-ID: 2",
            "Content-ID: 3",
        ]

    def test_limits(self) -> None:
        with pytest.raises(ValueError, match="at most 1000"):
            batchlib.encode([BatchOperation("GET", "accounts")] * 1001, ROOT)
        with pytest.raises(ValueError, match="GET is not allowed"):
            ChangeSet([BatchOperation("GET", "accounts")])


class TestDecodeAndMap:
    def test_microsoft_success_example(self) -> None:
        items = [
            ChangeSet([BatchOperation("POST", "tasks", {"subject": "Task 1 in batch"}, ref="t1")]),
            BatchOperation("GET", "tasks?$select=subject", ref="read"),
        ]
        answers = batchlib.decode(
            "multipart/mixed; boundary=batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f",
            MICROSOFT_RESPONSE,
        )
        results = batchlib.map_results(items, answers)
        assert [r.ref for r in results] == ["t1", "read"]
        assert results[0].ok
        assert results[0].entity_id == uuid.UUID(TASK_ID)
        assert results[1].status == 200
        assert results[1].json()["value"] == [{"subject": "Task 1 in batch"}]

    def test_microsoft_error_example_stops_the_batch(self) -> None:
        items = [
            BatchOperation("POST", "tasks", {"subject": "x" * 300}, ref="long"),
            BatchOperation("POST", "tasks", {"subject": "ok"}, ref="never"),
        ]
        answers = batchlib.decode(
            "multipart/mixed; boundary=batchresponse_156da4b8-cd55-4a1b-a1ed-ae5ac6d0ea56",
            MICROSOFT_ERROR,
        )
        first, second = batchlib.map_results(items, answers)
        assert isinstance(first.error, ValidationError)
        assert first.error.code == "0x80044331"
        assert first.error.request_id == "5ecd1cb3-1730-4ffc-909c-d44c22270026"
        assert second.ref == "never"
        assert not second.attempted

    def test_failed_change_set_marks_every_operation_rolled_back(self) -> None:
        ops = [BatchOperation("POST", "accounts", {"name": "a"}, ref=i) for i in range(3)]
        answers = batchlib.decode("multipart/mixed; boundary=b", _error_only_body("b", 412))
        results = batchlib.map_results([ChangeSet(ops)], answers)
        assert [r.ref for r in results] == [0, 1, 2]
        assert all(r.rolled_back and not r.ok and r.error is not None for r in results)

    def test_round_trip_of_our_own_encoding_shape(self) -> None:
        response = (
            "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            "HTTP/1.1 204 No Content\r\nOData-EntityId: "
            f"{ROOT}/accounts(00000000-0000-0000-0000-000000000001)\r\n\r\n\r\n--b--\r\n"
        ).encode()
        results = batchlib.map_results(
            [BatchOperation("POST", "accounts", {"name": "a"})],
            batchlib.decode('multipart/mixed; boundary="b"', response),
        )
        assert results[0].entity_id == uuid.UUID(int=1)

    def test_truncated_body_is_a_format_error(self) -> None:
        with pytest.raises(BatchFormatError, match="closing boundary"):
            batchlib.decode(
                "multipart/mixed; boundary=batchresponse_156da4b8-cd55-4a1b-a1ed-ae5ac6d0ea56",
                MICROSOFT_ERROR[:-10],
            )


def _error_only_body(boundary: str, status: int) -> bytes:
    return (
        f"--{boundary}\r\nContent-Type: application/http\r\n\r\n"
        f"HTTP/1.1 {status} Precondition Failed\r\nContent-Type: application/json\r\n\r\n"
        '{"error":{"code":"0x80040237","message":"Cannot insert duplicate key."}}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
