"""`gtmsync data load` and `gtmsync data sample` end to end, on a real database."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gtmsync.cli import app
from gtmsync.cli import context as cli_context
from gtmsync.platform.models import Company, Contact, IntentSignal


@pytest.fixture
def cli_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the CLI at this test's database; drop its cached engine afterwards."""
    monkeypatch.setenv("GTMSYNC_DATABASE_URL", database_url)
    cli_context.session_factory.cache_clear()
    yield database_url
    factory = cli_context.session_factory()
    factory.kw["bind"].dispose()
    cli_context.session_factory.cache_clear()


def total(model: type) -> int:
    with cli_context.session_factory()() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


runner = CliRunner()


class TestDataLoad:
    def test_clean_load_exits_0_and_prints_the_summary(self, cli_db: str, tmp_path: Path) -> None:
        companies = write(
            tmp_path / "companies.csv", ["platform_id", "name"], [["C1", "Acme"], ["C2", "Beta"]]
        )
        people = write(
            tmp_path / "people-export.csv",
            ["platform_id", "first_name", "last_name", "company_platform_id"],
            [["P1", "Ann", "Lee", "C1"]],
        )
        # Contacts given first on the command line: companies still load first.
        result = runner.invoke(
            app, ["data", "load", "--contacts", str(people), str(companies), "--no-progress"]
        )
        assert result.exit_code == 0, result.output
        assert "Loaded" in result.output
        assert "companies" in result.output
        assert "rejected" not in result.output
        assert (total(Company), total(Contact)) == (2, 1)

    def test_rejected_rows_exit_1_and_name_the_reject_file(
        self, cli_db: str, tmp_path: Path
    ) -> None:
        companies = write(
            tmp_path / "companies.csv",
            ["platform_id", "name", "employee_count"],
            [["C1", "Acme", "12"], ["C2", "Beta", "lots"]],
        )
        intent = write(
            tmp_path / "intent.csv",
            ["signal_id", "company_platform_id", "topic", "signal_score", "issue_date"],
            [["S1", "C1", "CRM Software", "77", "2026-11-02"]],
        )
        result = runner.invoke(app, ["data", "load", str(companies), str(intent)])
        assert result.exit_code == 1, result.output
        reject_file = tmp_path / "companies.csv.rejects.csv"
        assert f"companies: 1 rows rejected, see {reject_file}" in result.output
        assert (
            reject_file.read_text(encoding="utf-8")
            .splitlines()[1]
            .startswith("2,employee_count,lots,")
        )
        assert (total(Company), total(IntentSignal)) == (1, 1)

    def test_refused_file_exits_2_and_loads_nothing(self, cli_db: str, tmp_path: Path) -> None:
        companies = write(tmp_path / "companies.csv", ["platform_id", "name"], [["C1", "Acme"]])
        contacts = write(tmp_path / "contacts.csv", ["platform_id"], [["P1"]])
        result = runner.invoke(app, ["data", "load", str(companies), str(contacts)])
        assert result.exit_code == 2
        assert "missing required contacts column(s): first_name, last_name" in result.output
        assert total(Company) == 0

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["nothere.csv"], "does not exist"),
            (["misc.csv"], "cannot tell whether it holds companies, contacts or intent"),
            ([], "No files given"),
        ],
    )
    def test_bad_invocations_exit_2_with_a_fix(
        self, cli_db: str, tmp_path: Path, args: list[str], message: str
    ) -> None:
        (tmp_path / "misc.csv").write_text("platform_id,name\n", encoding="utf-8")
        paths = [str(tmp_path / a) for a in args]
        result = runner.invoke(app, ["data", "load", *paths])
        assert result.exit_code == 2
        assert message in result.output

    def test_non_utf8_file_exits_2(self, cli_db: str, tmp_path: Path) -> None:
        path = tmp_path / "companies.csv"
        path.write_bytes("platform_id,name\nC1,Café\n".encode("cp1252"))
        result = runner.invoke(app, ["data", "load", str(path)])
        assert result.exit_code == 2
        assert "not UTF-8" in result.output
        assert "CSV UTF-8" in result.output


class TestDataSample:
    def test_sample_files_then_load_them(self, cli_db: str, tmp_path: Path) -> None:
        out = tmp_path / "sample"
        result = runner.invoke(
            app,
            [
                "data",
                "sample",
                "--companies",
                "25",
                "--contacts-per-company",
                "2",
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "Wrote 25 companies, 50 contacts" in result.output
        assert total(Company) == 0  # files only
        loaded = runner.invoke(
            app,
            [
                "data",
                "load",
                str(out / "companies.csv"),
                str(out / "contacts.csv"),
                str(out / "intent.csv"),
            ],
        )
        assert loaded.exit_code == 0, loaded.output
        assert (total(Company), total(Contact)) == (25, 50)

    def test_sample_into_the_database(self, cli_db: str) -> None:
        result = runner.invoke(app, ["data", "sample", "--companies", "10", "--seed", "5"])
        assert result.exit_code == 0, result.output
        assert "Generated 10 companies, 50 contacts" in result.output
        assert (total(Company), total(Contact)) == (10, 50)
        assert total(IntentSignal) > 0
