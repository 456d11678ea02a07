"""Loading companies, contacts and intent from files into a real database (SQLite and PG)."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.platform.formats import FileRefusedError, RowProblem, Values
from gtmsync.platform.loaders import (
    Kind,
    LoadAbortedError,
    MissingColumnsError,
    load_file,
    load_files,
    load_source,
    preflight,
    reject_path_for,
)
from gtmsync.platform.models import Company, Contact, IntentSignal

COMPANY_HEADER = ["platform_id", "name", "website", "employee_count", "revenue"]
CONTACT_HEADER = ["platform_id", "first_name", "last_name", "company_platform_id", "email"]
INTENT_HEADER = [
    "signal_id",
    "company_platform_id",
    "topic",
    "signal_score",
    "audience_strength",
    "issue_date",
]


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with reject_path_for(path).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def companies_by_id(factory: sessionmaker[Session]) -> dict[str, Company]:
    with factory() as session:
        return {c.platform_id: c for c in session.execute(select(Company)).scalars()}


@pytest.fixture
def companies_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "companies.csv",
        COMPANY_HEADER,
        [
            ["C1", "Acme Inc", "https://www.Acme.com/about", "1,200", "5000000.0"],
            ["C2", "Beta Ltd", "beta.co.uk", "40", ""],
        ],
    )


class TestCompanies:
    def test_loads_and_normalises(
        self, session_factory: sessionmaker[Session], companies_csv: Path
    ) -> None:
        result = load_file(session_factory, Kind.COMPANIES, companies_csv)
        assert (result.read, result.loaded, result.inserted, result.rejected) == (2, 2, 2, 0)
        assert result.reject_file is None
        assert not reject_path_for(companies_csv).exists()
        rows = companies_by_id(session_factory)
        acme = rows["C1"]
        assert (acme.name_lower, acme.domain, acme.employee_count, acme.revenue) == (
            "acme inc",
            "acme.com",
            1200,
            5_000_000,
        )
        assert acme.created_at.tzinfo is not None
        assert rows["C2"].domain == "beta.co.uk"
        assert rows["C2"].revenue is None

    def test_reload_is_idempotent_and_applies_changes(
        self, session_factory: sessionmaker[Session], companies_csv: Path, tmp_path: Path
    ) -> None:
        load_file(session_factory, Kind.COMPANIES, companies_csv)
        stamp = companies_by_id(session_factory)["C2"].modified_at
        again = load_file(session_factory, Kind.COMPANIES, companies_csv)
        assert (again.read, again.loaded, again.inserted, again.updated) == (2, 2, 0, 2)
        assert count(session_factory, Company) == 2
        changed = write_csv(
            tmp_path / "companies-changed.csv",
            COMPANY_HEADER,
            [["C1", "Acme Incorporated", "acme.com", "1300", ""], ["C3", "Gamma", "", "", ""]],
        )
        result = load_file(session_factory, Kind.COMPANIES, changed)
        assert (result.inserted, result.updated) == (1, 1)
        rows = companies_by_id(session_factory)
        assert len(rows) == 3
        assert (rows["C1"].name, rows["C1"].employee_count, rows["C1"].revenue) == (
            "Acme Incorporated",
            1300,
            None,
        )
        # Untouched rows keep their modified_at: it moves only when a value changed.
        assert rows["C2"].modified_at == stamp
        assert rows["C1"].modified_at > stamp

    def test_repeated_key_in_one_file_keeps_the_last(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        path = write_csv(
            tmp_path / "companies.csv",
            COMPANY_HEADER,
            [["C1", "First", "", "", ""], ["C1", "Second", "", "", ""]],
        )
        result = load_file(session_factory, Kind.COMPANIES, path)
        assert (result.loaded, result.inserted) == (2, 1)
        assert companies_by_id(session_factory)["C1"].name == "Second"


class TestRejects:
    def test_every_reason_is_reported_and_good_rows_still_load(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        companies = write_csv(
            tmp_path / "companies.csv",
            [*COMPANY_HEADER, "description"],
            [
                ["C1", "Good Co", "good.com", "10", "1000", ""],
                ["", "No ID", "", "", "", ""],
                ["C3", "Bad Count", "", "ten", "", ""],
                ["C4", "Bad Site", "not a website", "", "", ""],
                ["C5", "X" * 251, "", "", "", ""],
            ],
        )
        contacts = write_csv(
            tmp_path / "contacts.csv",
            CONTACT_HEADER,
            [
                ["P1", "Ann", "Lee", "C1", "ann@good.com"],
                ["P2", "Bob", "", "C1", "bob@good.com"],
                ["P3", "Cy", "Do", "C1", "cy-at-good.com"],
                ["P4", "Di", "Ek", "C404", "di@x.com"],
                ["P5", "Ed", "Fo", "", ""],
            ],
        )
        intent = write_csv(
            tmp_path / "intent.csv",
            INTENT_HEADER,
            [
                ["S1", "C1", "CRM Software", "88", "A", "2026-11-02"],
                ["S2", "C1", "CRM Software", "101", "A", "2026-11-02"],
                ["S3", "C1", "CRM Software", "90", "A", "02/11/2026"],
                ["S4", "C404", "CRM Software", "90", "A", "2026-11-02"],
                ["S5", "C1", "CRM Software", "high", "Z", "2026-11-02"],
            ],
        )
        summary = load_files(
            session_factory,
            [(Kind.INTENT, intent), (Kind.CONTACTS, contacts), (Kind.COMPANIES, companies)],
        )
        assert [r.kind for r in summary.results] == [Kind.COMPANIES, Kind.CONTACTS, Kind.INTENT]
        assert [(r.loaded, r.rejected) for r in summary.results] == [(1, 4), (2, 3), (1, 4)]
        assert summary.rejected == 11

        def reasons(path: Path) -> set[tuple[str, str, str]]:
            return {(r["row"], r["column"], r["reason"]) for r in read_rejects(path)}

        assert reasons(companies) == {
            ("2", "platform_id", "missing required value"),
            ("3", "employee_count", "not a whole number (expected digits such as 1200 or 1,200)"),
            (
                "4",
                "website",
                "not a web address (expected example.com or https://www.example.com)",
            ),
            ("5", "name", "longer than 250 characters"),
        }
        assert reasons(contacts) == {
            ("2", "last_name", "missing required value"),
            ("3", "email", "not an email address (expected name@example.com)"),
            ("4", "company_platform_id", "unknown company (load its company first)"),
        }
        assert reasons(intent) == {
            ("2", "signal_score", "score must be between 0 and 100"),
            ("3", "issue_date", "not a date (expected YYYY-MM-DD)"),
            ("4", "company_platform_id", "unknown company (load its company first)"),
            ("5", "signal_score", "not a whole number (expected digits such as 1200 or 1,200)"),
            ("5", "audience_strength", "audience strength must be one of A, B, C, D, E"),
        }
        assert read_rejects(contacts)[1]["value"] == "cy-at-good.com"
        with session_factory() as session:
            loaded = {c.platform_id: c for c in session.execute(select(Contact)).scalars()}
            signal = session.execute(select(IntentSignal)).scalar_one()
        assert set(loaded) == {"P1", "P5"}
        assert loaded["P5"].company_id is None
        assert loaded["P5"].email is None
        assert signal.issue_date == date(2026, 11, 2)
        assert signal.company_id == loaded["P1"].company_id

    def test_stale_reject_file_is_removed_by_a_clean_run(
        self, session_factory: sessionmaker[Session], companies_csv: Path
    ) -> None:
        stale = reject_path_for(companies_csv)
        stale.write_text("row,column,value,reason\n9,name,,old\n", encoding="utf-8")
        load_file(session_factory, Kind.COMPANIES, companies_csv)
        assert not stale.exists()


class TestRefusals:
    def test_missing_columns_refuse_the_file_before_any_write(
        self, session_factory: sessionmaker[Session], companies_csv: Path, tmp_path: Path
    ) -> None:
        contacts = write_csv(tmp_path / "contacts.csv", ["platform_id", "email"], [["P1", ""]])
        with pytest.raises(MissingColumnsError) as exc:
            load_files(
                session_factory, [(Kind.COMPANIES, companies_csv), (Kind.CONTACTS, contacts)]
            )
        assert exc.value.missing == ["first_name", "last_name"]
        assert "first_name, last_name" in str(exc.value)
        assert "Add the column" in str(exc.value)
        # The companies file was fine but nothing was written: every header is checked first.
        assert count(session_factory, Company) == 0
        assert not reject_path_for(contacts).exists()

    def test_missing_jsonl_key_in_first_record_refuses(self, tmp_path: Path) -> None:
        path = tmp_path / "intent.jsonl"
        path.write_text(json.dumps({"signal_id": "S1", "topic": "CRM"}) + "\n", encoding="utf-8")
        with pytest.raises(MissingColumnsError) as exc:
            preflight(Kind.INTENT, path)
        assert exc.value.missing == ["company_platform_id", "signal_score", "issue_date"]

    def test_not_utf8_file_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "companies.csv"
        path.write_bytes("platform_id,name\nC1,Société Générale\n".encode("latin-1"))
        with pytest.raises(FileRefusedError, match="not UTF-8"):
            preflight(Kind.COMPANIES, path)

    def test_missing_file_and_unknown_format(self, tmp_path: Path) -> None:
        with pytest.raises(FileRefusedError, match="does not exist"):
            preflight(Kind.COMPANIES, tmp_path / "nope.csv")
        other = tmp_path / "companies.xlsx"
        other.write_bytes(b"PK")
        with pytest.raises(FileRefusedError, match=r"\.jsonl"):
            preflight(Kind.COMPANIES, other)

    def test_bad_bytes_after_the_first_batch_abort_with_what_was_kept(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        path = tmp_path / "companies.csv"
        # Past the first 64 KiB, which is checked before anything is written.
        good = "".join(f"C{i},Company {i},{'x' * 100}\n" for i in range(1000))
        path.write_bytes(b"platform_id,name,description\n" + good.encode() + b"C-bad,Caf\xe9,\n")
        with pytest.raises(LoadAbortedError) as exc:
            load_file(session_factory, Kind.COMPANIES, path, batch_size=100)
        assert "not UTF-8" in exc.value.message
        assert "load it again" in str(exc.value)
        assert count(session_factory, Company) > 0

    def test_empty_file_loads_nothing(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        path = tmp_path / "companies.csv"
        path.write_bytes(b"")
        result = load_file(session_factory, Kind.COMPANIES, path)
        assert (result.read, result.loaded, result.empty) == (0, 0, True)
        header_only = write_csv(tmp_path / "contacts.csv", CONTACT_HEADER, [])
        result = load_file(session_factory, Kind.CONTACTS, header_only)
        assert (result.read, result.loaded, result.empty) == (0, 0, False)


class TestFormats:
    def test_quoting_non_ascii_bom_header_case_and_extra_columns(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        path = tmp_path / "companies.csv"
        text = (
            "Platform ID,NAME,Description,Ticker\r\n"
            'C1,"Müller, Söhne & Co.","Line one\nLine ""two"", with commas",MSC\r\n'
            "C2,株式会社テスト,,\r\n"
        )
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # Excel's "CSV UTF-8"
        result = load_file(session_factory, Kind.COMPANIES, path)
        assert (result.loaded, result.rejected) == (2, 0)
        assert result.ignored_columns == ("ticker",)
        rows = companies_by_id(session_factory)
        assert rows["C1"].name == "Müller, Söhne & Co."
        assert rows["C1"].name_lower == "müller, söhne & co."
        assert rows["C1"].description == 'Line one\nLine "two", with commas'
        assert rows["C2"].name == "株式会社テスト"

    def test_row_numbers_count_records_not_lines(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        path = write_csv(
            tmp_path / "companies.csv",
            ["platform_id", "name", "description", "employee_count"],
            [["C1", "A", "multi\nline\ntext", "1"], ["C2", "B", "", "x"]],
        )
        load_file(session_factory, Kind.COMPANIES, path)
        assert [r["row"] for r in read_rejects(path)] == ["2"]

    def test_too_many_values_is_a_reject(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        path = tmp_path / "companies.csv"
        path.write_text("platform_id,name\nC1,A\nC2,B,extra\n", encoding="utf-8")
        result = load_file(session_factory, Kind.COMPANIES, path)
        assert (result.loaded, result.rejected) == (1, 1)
        assert read_rejects(path)[0]["reason"] == "row has 3 values but the header has 2 columns"

    def test_json_lines_with_typed_values_and_gzip(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        records = [
            {"platform_id": "C1", "name": "Acme", "employee_count": 1200, "revenue": 2.5e6},
            {"platform_id": "C2", "name": "Beta", "website": "beta.io", "extra": [1, 2]},
            {"platform_id": "C3", "name": None},
        ]
        lines = "\n".join(json.dumps(r) for r in records) + "\n\nnot json\n[1, 2]\n"
        path = tmp_path / "companies.jsonl.gz"
        path.write_bytes(gzip.compress(lines.encode("utf-8")))
        result = load_file(session_factory, Kind.COMPANIES, path)
        assert (result.read, result.loaded, result.rejected) == (5, 2, 3)
        assert result.ignored_columns == ()  # judged on the first object
        rows = companies_by_id(session_factory)
        assert (rows["C1"].employee_count, rows["C1"].revenue) == (1200, 2_500_000)
        assert rows["C2"].domain == "beta.io"
        rejects = read_rejects(path)
        assert [(r["row"], r["column"]) for r in rejects] == [("3", "name"), ("5", ""), ("6", "")]
        assert rejects[1]["reason"].startswith("not valid JSON")
        assert rejects[2]["reason"] == "line holds JSON but not an object"


class _CountingSource:
    """A stream of generated rows that records how much was committed while it was read."""

    name = "generated companies"
    columns = ("platform_id", "name")

    def __init__(self, rows: int, probe: sessionmaker[Session]) -> None:
        self.total = rows
        self.probe = probe
        self.committed_while_reading: list[int] = []

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Values | RowProblem]]:
        for n in range(1, self.total + 1):
            if n % 400 == 0:
                self.committed_while_reading.append(count(self.probe, Company))
            record = {"platform_id": f"C{n:06d}", "name": f"Company {n}"}
            yield n, [record.get(col) for col in wanted]

    def bytes_read(self) -> int:
        return 0


class TestStreaming:
    @pytest.mark.parametrize("pipelined", [True, False])
    def test_batches_commit_while_the_stream_is_still_being_read(
        self, session_factory: sessionmaker[Session], pipelined: bool
    ) -> None:
        source = _CountingSource(2000, session_factory)
        result, _ = load_source(
            session_factory,
            Kind.COMPANIES,
            source,
            batch_size=200,
            commit_rows=200,
            pipelined=pipelined,
        )
        assert (result.loaded, result.inserted) == (2000, 2000)
        # Earlier batches were already committed (visible to another connection) while later
        # rows had not been read yet: nothing buffers the whole stream.
        assert source.committed_while_reading[-1] >= 1400
        assert source.committed_while_reading == sorted(source.committed_while_reading)
        assert count(session_factory, Company) == 2000

    def test_commits_come_in_groups_of_commit_rows(
        self, session_factory: sessionmaker[Session]
    ) -> None:
        source = _CountingSource(2000, session_factory)
        load_source(
            session_factory,
            Kind.COMPANIES,
            source,
            batch_size=100,
            commit_rows=600,
            pipelined=False,
        )
        # Probed before rows 400, 800, ... 2000: only whole groups of 600 rows are visible.
        assert source.committed_while_reading == [0, 600, 600, 1200, 1800]
        assert count(session_factory, Company) == 2000
