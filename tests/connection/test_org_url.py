"""Organization URL checks: one message per mistake, normalisation said out loud."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gtmsync.connection import org_url
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.kit.errors import UserError
from gtmsync.settings import Mode, Settings


def _settings(tmp_path: Path, mode: Mode = Mode.PRODUCTION) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="x" * 40, mode=mode, _env_file=None)


def _refused(raw: str, settings: Settings) -> UserError:
    with pytest.raises(UserError) as raised:
        org_url.normalise(raw, settings)
    assert raised.value.field == "org_url"
    return raised.value


class TestNormalise:
    @pytest.mark.parametrize(
        ("raw", "url"),
        [
            ("https://contoso.crm.dynamics.com", "https://contoso.crm.dynamics.com"),
            ("  https://Contoso.CRM4.dynamics.com/  ", "https://contoso.crm4.dynamics.com"),
            ("https://contoso.api.crm.dynamics.com:443", "https://contoso.api.crm.dynamics.com"),
            ("https://agency.crm9.dynamics.com", "https://agency.crm9.dynamics.com"),
            ("https://agency.crm.microsoftdynamics.us", "https://agency.crm.microsoftdynamics.us"),
            ("https://agency.crm.appsplatform.us", "https://agency.crm.appsplatform.us"),
            ("https://contoso.crm.dynamics.cn", "https://contoso.crm.dynamics.cn"),
        ],
    )
    def test_accepted_hosts(self, tmp_path: Path, raw: str, url: str) -> None:
        result = org_url.normalise(raw, _settings(tmp_path))
        assert result.url == url
        assert result.notes == []

    def test_pasted_path_is_stripped_and_said(self, tmp_path: Path) -> None:
        result = org_url.normalise(
            "https://contoso.crm.dynamics.com/main.aspx?appid=42&pagetype=dashboard",
            _settings(tmp_path),
        )
        assert result.url == "https://contoso.crm.dynamics.com"
        assert result.notes == [
            "We removed '/main.aspx?appid=42&pagetype=dashboard' from the end: the "
            "Organization URL is only the part up to the host name."
        ]

    def test_missing_scheme_is_added_and_said(self, tmp_path: Path) -> None:
        result = org_url.normalise("contoso.crm.dynamics.com", _settings(tmp_path))
        assert result.url == "https://contoso.crm.dynamics.com"
        assert result.notes == ["We added https:// in front of the address."]

    def test_empty(self, tmp_path: Path) -> None:
        assert _refused("   ", _settings(tmp_path)).message == "Enter your Organization URL."

    def test_http(self, tmp_path: Path) -> None:
        error = _refused("http://contoso.crm.dynamics.com", _settings(tmp_path))
        assert error.message == "The Organization URL must start with https://, not http://."

    @pytest.mark.parametrize(
        "raw",
        [
            "https://contoso.com",
            "https://dynamics.com",
            "https://contoso.dynamics.com.evil.example",
        ],
    )
    def test_not_a_dynamics_host(self, tmp_path: Path, raw: str) -> None:
        error = _refused(raw, _settings(tmp_path))
        assert error.message.endswith("is not a Dynamics 365 address.")
        assert error.fix is not None
        assert ".dynamics.com" in error.fix

    def test_odd_port_on_a_dynamics_host(self, tmp_path: Path) -> None:
        error = _refused("https://contoso.crm.dynamics.com:8443", _settings(tmp_path))
        assert error.message == "Dynamics 365 does not answer on port 8443."

    def test_credentials_in_the_url(self, tmp_path: Path) -> None:
        error = _refused("https://me:pw@contoso.crm.dynamics.com", _settings(tmp_path))
        assert "user name or password" in error.message

    def test_local_server_only_in_development_or_demo(self, tmp_path: Path) -> None:
        error = _refused("https://127.0.0.1:8443", _settings(tmp_path, Mode.PRODUCTION))
        assert "accepted only when the hub runs in development or demo mode" in error.message
        for mode in (Mode.DEVELOPMENT, Mode.DEMO):
            result = org_url.normalise("https://127.0.0.1:8443/", _settings(tmp_path, mode))
            assert result.url == "https://127.0.0.1:8443"


class TestProbe:
    def test_unknown_host(self) -> None:
        with pytest.raises(UserError) as raised:
            org_url.probe("https://no-such-org.invalid")
        assert (
            raised.value.message == "no-such-org.invalid could not be found (DNS has no such host)."
        )

    def test_nothing_listening(self) -> None:
        with socket.socket() as sock:  # a port that was free a moment ago
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(UserError) as raised:
            org_url.probe(f"https://127.0.0.1:{port}", timeout=2)
        assert raised.value.message.startswith(f"127.0.0.1 did not answer on port {port}")

    def test_reachable_local_server(self, dataverse: ServerHandle) -> None:
        org_url.probe(dataverse.org_url)
