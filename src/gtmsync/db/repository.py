"""Typed base for every feature's repository: all queries live in repositories.

Shaped after Polar's `kit/repository/base.py`, synchronous.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from gtmsync.db.base import Base

M = TypeVar("M", bound=Base)


class RepositoryBase(Generic[M]):
    model: type[M]

    def __init__(self, session: Session) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: Session) -> Self:
        return cls(session)

    def get_base_statement(self) -> Select[M]:
        return select(self.model)

    def get(self, id_: Any) -> M | None:
        return self.session.get(self.model, id_)

    def get_one_or_none(self, statement: Select[M]) -> M | None:
        return self.session.execute(statement).scalars().unique().one_or_none()

    def get_all(self, statement: Select[M]) -> Sequence[M]:
        return self.session.execute(statement).scalars().unique().all()

    def paginate(self, statement: Select[M], *, limit: int, page: int) -> tuple[list[M], int]:
        """Return one page and the total count (offset paging; fine for admin tables)."""
        count = self.session.execute(
            select(func.count()).select_from(statement.order_by(None).subquery())
        ).scalar_one()
        rows = self.session.execute(statement.limit(limit).offset((page - 1) * limit)).scalars()
        return list(rows.unique().all()), int(count)

    def stream(self, statement: Select[M], *, yield_per: int = 1000) -> Iterator[M]:
        """Iterate a large result in batches with flat memory.

        Caveat: no joined eager loads here (they need `unique()`, which buffers everything).
        """
        result = self.session.execute(statement.execution_options(yield_per=yield_per))
        yield from result.scalars()

    def create(self, obj: M, *, flush: bool = False) -> M:
        self.session.add(obj)
        if flush:
            self.session.flush()
        return obj

    def update(self, obj: M, *, update_dict: dict[str, Any], flush: bool = False) -> M:
        for key, value in update_dict.items():
            setattr(obj, key, value)
        self.session.add(obj)
        if flush:
            self.session.flush()
        return obj

    def delete(self, obj: M, *, flush: bool = False) -> None:
        self.session.delete(obj)
        if flush:
            self.session.flush()
