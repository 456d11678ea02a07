from __future__ import annotations

import json
import logging

import pytest

from gtmsync.kit.logging import JsonFormatter, RedactingFilter, redact, request_id_var

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


class TestRedaction:
    @pytest.mark.parametrize(
        ("text", "secret"),
        [
            (f"Authorization: Bearer {JWT}", JWT),
            ("Authorization: Bearer opaque-token-value", "opaque-token-value"),
            ("refresh_token=0.AAAB-secret&grant_type=refresh_token", "0.AAAB-secret"),
            ('{"client_secret": "s3cr3t-value"}', "s3cr3t-value"),
            ("password=hunter2hunter2", "hunter2hunter2"),
            (f"token in text {JWT} here", JWT),
            ('GET /connection/callback?code=0.AQ-authcode&state=x HTTP/1.1"', "0.AQ-authcode"),
            ('{"code": "Ys2OqQpkeK1nTXx5-authcode", "code_verifier": "v"}', "Ys2OqQpkeK1nTX"),
            ("calling with gtm_dBBltrABCDEFGHIJKLMNOPQRSTUVWXYZ012345 as caller", "ABCDEFGHIJ"),
        ],
    )
    def test_secrets_are_masked(self, text: str, secret: str) -> None:
        assert secret not in redact(text)
        assert "REDACTED" in redact(text)

    @pytest.mark.parametrize("text", ["status_code=503", "postcode=SW1A", "error_code: 0x80040217"])
    def test_other_codes_are_kept(self, text: str) -> None:
        assert redact(text) == text

    def test_filter_masks_arguments_too(self) -> None:
        record = logging.LogRecord(
            "x", logging.INFO, __file__, 1, "got %s", (f"Bearer {JWT}",), None
        )
        RedactingFilter().filter(record)
        assert JWT not in record.getMessage()

    def test_json_lines_carry_request_id(self) -> None:
        token = request_id_var.set("req-42")
        try:
            record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
            payload = json.loads(JsonFormatter().format(record))
        finally:
            request_id_var.reset(token)
        assert payload["msg"] == "hello"
        assert payload["request_id"] == "req-42"
