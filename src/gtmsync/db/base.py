"""Declarative base with a constraint naming convention and UTC-aware timestamps.

The naming convention keeps Alembic's SQLite batch migrations and PostgreSQL autogenerate
deterministic: every constraint has a predictable name that a later migration can drop.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, TypeDecorator, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gtmsync.kit.clock import ensure_utc, utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def created_on(index: object, dialect: str | None) -> bool:
    """Whether the models create `index` on `dialect` (`Index(...).ddl_if(dialect=...)`);
    Alembic's autogenerate and `Table.indexes` both ignore that condition."""
    wanted = getattr(getattr(index, "_ddl_if", None), "dialect", None)
    if wanted is None or dialect is None:
        return True
    return dialect == wanted if isinstance(wanted, str) else dialect in wanted


# SQLite only auto-increments an `INTEGER PRIMARY KEY`; BIGINT elsewhere.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes; hands back aware UTC even from SQLite, which drops the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                "naive datetime given to a UTC column; use gtmsync.kit.clock.utc_now()"
            )
        return ensure_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        assert isinstance(value, datetime)
        return ensure_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


class UUIDPK:
    """UUID primary keys: safe to expose in URLs and to generate before insert."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    modified_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
