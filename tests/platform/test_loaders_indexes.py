"""Deferred indexes: a load into an empty table drops and rebuilds them, crash-safely."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, Table, inspect
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.db import migrate
from gtmsync.db.base import created_on
from gtmsync.platform.bulk_upsert import deferrable_indexes, engine_of
from gtmsync.platform.formats import RowProblem, Values
from gtmsync.platform.loaders import Kind, load_file, load_source, restore_deferred_indexes
from gtmsync.platform.models import Company, Contact, IntentSignal

from .test_loaders import COMPANY_HEADER, CONTACT_HEADER, count, write_csv

CONTACTS: Table = Contact.__table__  # type: ignore[assignment]
TABLES: tuple[Table, ...] = (  # type: ignore[assignment]
    Company.__table__,
    CONTACTS,
    IntentSignal.__table__,
)


def index_names(engine: Engine, table: Table) -> set[str]:
    return {str(ix["name"]) for ix in inspect(engine).get_indexes(table.name)}


def model_index_names(table: Table, dialect: str | None = None) -> set[str]:
    return {str(ix.name) for ix in table.indexes if created_on(ix, dialect)}


def assert_every_model_index_present(engine: Engine) -> None:
    for table in TABLES:
        expected = model_index_names(table, engine.dialect.name)
        assert expected <= index_names(engine, table), table.name


def drop_contact_indexes(engine: Engine) -> None:
    with engine.begin() as conn:
        for index in deferrable_indexes(CONTACTS):
            index.drop(conn)


class BoomError(RuntimeError):
    """The simulated crash."""


class FailingSource:
    """Contact rows that fail after `good` rows, with a peek at the indexes at that moment."""

    def __init__(self, engine: Engine, good: int) -> None:
        self.name = "failing contacts"
        self.columns = ["platform_id", "first_name", "last_name"]
        self.engine = engine
        self.good = good
        self.present_at_crash: set[str] | None = None

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Values | RowProblem]]:
        for n in range(1, self.good + 1):
            record = {"platform_id": f"P{n}", "first_name": "Ada", "last_name": f"L{n}"}
            yield n, [record.get(col) for col in wanted]
        self.present_at_crash = index_names(self.engine, CONTACTS)
        raise BoomError("the row source failed part-way")

    def bytes_read(self) -> int:
        return 0


@pytest.fixture
def loaded_companies(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = write_csv(tmp_path / "companies.csv", COMPANY_HEADER, [["C1", "Acme", "", "", ""]])
    load_file(session_factory, Kind.COMPANIES, path)


def contacts_csv(tmp_path: Path, rows: int, name: str = "contacts.csv") -> Path:
    return write_csv(
        tmp_path / name,
        CONTACT_HEADER,
        [[f"P{n}", "Ada", f"L{n}", "C1", f"a{n}@x.io"] for n in range(rows)],
    )


def test_the_deferrable_indexes_are_the_non_unique_model_indexes() -> None:
    names = {str(ix.name) for ix in deferrable_indexes(CONTACTS)}
    assert names == {
        "ix_contacts_company_id",
        "ix_contacts_email",
        "ix_contacts_department",
        "ix_contacts_management_level",
    }


@pytest.mark.usefixtures("loaded_companies")
class TestDeferredIndexes:
    def test_load_into_empty_table_ends_with_every_index_and_no_drift(
        self, session_factory: sessionmaker[Session], database_url: str, tmp_path: Path
    ) -> None:
        engine = engine_of(session_factory)
        result = load_file(session_factory, Kind.CONTACTS, contacts_csv(tmp_path, 50))
        assert (result.inserted, result.rejected) == (50, 0)
        assert_every_model_index_present(engine)
        migrate.check(database_url)  # `alembic check`: the rebuilt indexes match the models

    def test_crash_after_commit_is_rebuilt_by_the_finally(
        self, session_factory: sessionmaker[Session], db_backend: str
    ) -> None:
        engine = engine_of(session_factory)
        source = FailingSource(engine, good=30)
        with pytest.raises(BoomError):
            load_source(session_factory, Kind.CONTACTS, source, batch_size=10, commit_rows=10)
        assert source.present_at_crash is not None
        if db_backend == "sqlite":
            # The indexes really were gone mid-load (the drop is committed at once) ...
            assert not model_index_names(CONTACTS) & source.present_at_crash
        else:
            # ... while PostgreSQL, where deferring measured no gain, keeps them throughout.
            assert model_index_names(CONTACTS) <= source.present_at_crash
        # ... and the committed rows stay, with every index rebuilt on the way out.
        assert count(session_factory, Contact) == 30
        assert_every_model_index_present(engine)

    def test_indexes_left_dropped_by_a_killed_load_are_restored(
        self, session_factory: sessionmaker[Session], database_url: str
    ) -> None:
        engine = engine_of(session_factory)
        # A SIGKILL skips the `finally`: the state it leaves is committed rows, no indexes.
        drop_contact_indexes(engine)
        assert not model_index_names(CONTACTS) & index_names(engine, CONTACTS)
        created = restore_deferred_indexes(engine)
        assert set(created) == model_index_names(CONTACTS)
        assert_every_model_index_present(engine)
        assert restore_deferred_indexes(engine) == []  # idempotent
        migrate.check(database_url)

    def test_every_load_restores_missing_indexes_first(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        engine = engine_of(session_factory)
        drop_contact_indexes(engine)
        load_file(
            session_factory, Kind.COMPANIES, write_csv(tmp_path / "c.csv", COMPANY_HEADER, [])
        )
        assert_every_model_index_present(engine)

    def test_load_into_non_empty_table_keeps_its_indexes(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        engine = engine_of(session_factory)
        load_file(session_factory, Kind.CONTACTS, contacts_csv(tmp_path, 5))
        source = FailingSource(engine, good=30)
        with pytest.raises(BoomError):
            load_source(session_factory, Kind.CONTACTS, source, batch_size=10, commit_rows=10)
        assert source.present_at_crash is not None
        assert model_index_names(CONTACTS) <= source.present_at_crash
        assert_every_model_index_present(engine)

    def test_opting_out_keeps_indexes_in_an_empty_table(
        self, session_factory: sessionmaker[Session]
    ) -> None:
        engine = engine_of(session_factory)
        source = FailingSource(engine, good=30)
        with pytest.raises(BoomError):
            load_source(
                session_factory,
                Kind.CONTACTS,
                source,
                batch_size=10,
                commit_rows=10,
                defer_indexes=False,
            )
        assert source.present_at_crash is not None
        assert model_index_names(CONTACTS) <= source.present_at_crash
