from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from gtmsync.settings import Mode, Settings


class TestSettings:
    def test_defaults_put_sqlite_under_the_data_dir(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path)
        assert settings.db_url == f"sqlite:///{(tmp_path / 'gtmsync.db').as_posix()}"
        assert settings.mode is Mode.PRODUCTION

    def test_env_vars_are_read(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GTMSYNC_DATABASE_URL", "postgresql+psycopg://u@h/db")
        monkeypatch.setenv("GTMSYNC_QUEUE_URL", "redis://127.0.0.1:6379/0")
        monkeypatch.setenv("GTMSYNC_MODE", "demo")
        settings = Settings(data_dir=tmp_path)
        assert settings.db_url == "postgresql+psycopg://u@h/db"
        assert settings.queue_url == "redis://127.0.0.1:6379/0"
        assert settings.mode is Mode.DEMO

    def test_secret_key_is_generated_once_with_0600(self, tmp_path: Path) -> None:
        first = Settings(data_dir=tmp_path, secret_key=None).resolved_secret_key()
        second = Settings(data_dir=tmp_path, secret_key=None).resolved_secret_key()
        assert first == second
        assert len(first) >= 48
        mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
        assert mode == 0o600

    def test_given_secret_key_wins_and_is_not_written(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, secret_key=SecretStr("given-key"))
        assert settings.resolved_secret_key() == "given-key"
        assert not (tmp_path / "secret_key").exists()
        assert "given-key" not in repr(settings)
