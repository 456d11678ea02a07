"""Error responses become the documented tree, with status, code, message and request id."""

from __future__ import annotations

import json

import httpx
import pytest

from gtmsync.dataverse import errors


def _response(status: int, body: object, **headers: str) -> httpx.Response:
    content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return httpx.Response(status, content=content, headers=headers)


class TestFromResponse:
    @pytest.mark.parametrize(
        ("status", "code", "message", "expected"),
        [
            (404, "0x80040217", "account With Id = 1 Does Not Exist", errors.NotFoundError),
            (404, "", "account With Id = 1 Does Not Exist", errors.NotFoundError),
            (412, "0x80060882", "The version … doesn't match", errors.ConcurrencyError),
            (412, "", "The version of the existing record doesn't match", errors.ConcurrencyError),
            (
                412,
                "",
                "A record with matching key values already exists.",
                errors.DuplicateRecordError,
            ),
            (412, "0x80060892", "Entity Key k violated.", errors.DuplicateRecordError),
            (500, "0x80040333", "A record was not created or updated", errors.DuplicateRecordError),
            (
                403,
                "0x80040220",
                "Principal user is missing prvCreateAccount",
                errors.PrivilegeError,
            ),
            (400, "0x80044331", "A validation error occurred.", errors.ValidationError),
            (400, "0x0", "Could not find a property named 'x'", errors.ValidationError),
            (401, "", "", errors.AuthenticationError),
            (405, "", "NotSupported", errors.NotSupportedError),
            (429, "0x80072322", "Number of requests exceeded the limit", errors.ThrottledError),
            (503, "", "Service Unavailable", errors.ServerError),
            (
                400,
                "0x80044352",
                "Version stamp associated with the client has expired.",
                errors.ChangeTokenExpiredError,
            ),
        ],
    )
    def test_maps_status_and_code_to_class(
        self, status: int, code: str, message: str, expected: type[errors.APIError]
    ) -> None:
        error = errors.from_response(
            _response(status, {"error": {"code": code, "message": message}})
        )
        assert type(error) is expected
        assert error.status == status
        assert error.message == (message or f"Dataverse answered HTTP {status}")

    def test_keeps_code_and_request_id(self) -> None:
        error = errors.from_response(
            _response(
                400,
                {"error": {"code": "0x80044331", "message": "too long"}},
                **{"x-ms-service-request-id": "req-42"},
            )
        )
        assert (error.code, error.request_id) == ("0x80044331", "req-42")
        assert "req-42" in str(error)
        assert "0x80044331" in str(error)

    def test_batch_part_req_id_header_counts_as_request_id(self) -> None:
        error = errors.from_parts(400, httpx.Headers({"REQ_ID": "abc"}), b'{"error":{}}')
        assert error.request_id == "abc"

    def test_inner_error_message_is_appended(self) -> None:
        body = {"error": {"code": "0x0", "message": "outer", "innererror": {"message": "inner"}}}
        assert errors.from_response(_response(400, body)).message == "outer (inner)"

    def test_non_json_body_still_gives_a_message(self) -> None:
        error = errors.from_response(_response(502, b"<html>Bad Gateway</html>"))
        assert isinstance(error, errors.ServerError)
        assert "Bad Gateway" in error.message

    def test_throttled_error_carries_retry_after(self) -> None:
        error = errors.from_response(_response(429, {"error": {}}), retry_after=7.0)
        assert isinstance(error, errors.ThrottledError)
        assert error.retry_after == 7.0


class TestClassification:
    @pytest.mark.parametrize(
        "cls", [errors.TransportError, errors.ThrottledError, errors.ServerError]
    )
    def test_transient(self, cls: type[errors.DataverseError]) -> None:
        assert cls.transient

    @pytest.mark.parametrize(
        "cls",
        [
            errors.NotFoundError,
            errors.DuplicateRecordError,
            errors.ConcurrencyError,
            errors.PrivilegeError,
            errors.ValidationError,
            errors.ChangeTokenExpiredError,
            errors.ReconnectRequiredError,
            errors.BudgetExceededError,
            errors.NotSupportedError,
        ],
    )
    def test_terminal(self, cls: type[errors.DataverseError]) -> None:
        assert not cls.transient

    def test_tree_in_docstring_names_every_error_class(self) -> None:
        classes = [
            name
            for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, errors.DataverseError)
        ]
        doc = errors.__doc__ or ""
        assert [c for c in classes if c not in doc] == []
