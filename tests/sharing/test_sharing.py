"""Data Sharing: contract opt-out lock, per-category toggles, contributions stop at once."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from gtmsync.kit.errors import PermissionDeniedError, UserError
from gtmsync.platform import audit
from gtmsync.platform.models import Org, Role
from gtmsync.sharing import service
from tests.fixtures.factories import make_user


def enabled(session: Session, org: Org) -> dict[str, bool]:
    return {s.category.key: s.enabled for s in service.state(session, org.id).categories}


class TestSettings:
    def test_every_category_is_on_by_default(self, db_session: Session, org: Org) -> None:
        assert set(enabled(db_session, org).values()) == {True}
        assert service.state(db_session, org.id).message is None

    def test_toggle_is_saved_and_audited(self, db_session: Session, org: Org) -> None:
        admin = make_user(db_session, org=org, role=Role.ADMIN)
        service.update(db_session, org_id=org.id, actor=admin, changes={"people": False})
        assert enabled(db_session, org)["people"] is False
        assert enabled(db_session, org)["accounts"] is True
        (event,) = audit.list_events(db_session, org.id, action_prefix="sharing.")
        assert event.actor_email == admin.email
        assert event.summary == "Data sharing changed: Contact and lead data OFF."
        assert event.detail == {"changes": {"people": {"from": True, "to": False}}}

    def test_contract_opt_out_locks_everything_off(self, db_session: Session, org: Org) -> None:
        admin = make_user(db_session, org=org, role=Role.ADMIN)
        org.data_sharing_contract_opt_out = True
        db_session.flush()
        state = service.state(db_session, org.id)
        assert state.locked
        assert set(enabled(db_session, org).values()) == {False}
        assert state.message is not None
        assert "not editable" in state.message
        with pytest.raises(PermissionDeniedError, match="not editable"):
            service.update(db_session, org_id=org.id, actor=admin, changes={"accounts": True})

    def test_unknown_category_is_refused_by_name(self, db_session: Session, org: Org) -> None:
        admin = make_user(db_session, org=org, role=Role.ADMIN)
        with pytest.raises(UserError) as raised:
            service.update(db_session, org_id=org.id, actor=admin, changes={"dna": True})
        assert "dna" in raised.value.message
        assert raised.value.field == "categories"


class TestContributions:
    def test_recorded_per_day_and_category_once_per_source(
        self, db_session: Session, org: Org
    ) -> None:
        day = date(2026, 11, 20)
        assert service.record_contribution(
            db_session, org_id=org.id, table="account", records=120, source="run-1/account", day=day
        )
        assert service.record_contribution(
            db_session, org_id=org.id, table="contact", records=30, source="run-1/contact", day=day
        )
        assert service.record_contribution(
            db_session, org_id=org.id, table="lead", records=5, source="run-1/lead", day=day
        )
        # A retried job reports the same run again: counted once.
        assert not service.record_contribution(
            db_session, org_id=org.id, table="account", records=120, source="run-1/account", day=day
        )
        # Tables outside every category and empty runs contribute nothing.
        assert not service.record_contribution(
            db_session, org_id=org.id, table="product", records=9, source="run-1/product", day=day
        )
        assert not service.record_contribution(
            db_session, org_id=org.id, table="opportunity", records=0, source="run-1/opp", day=day
        )
        rows = service.contributions(db_session, org.id, days=10_000)
        assert [(r.day, r.counts, r.total) for r in rows] == [
            (day, {"accounts": 120, "people": 35}, 155)
        ]

    def test_turning_a_category_off_stops_contributions_immediately(
        self, db_session: Session, org: Org
    ) -> None:
        admin = make_user(db_session, org=org, role=Role.ADMIN)
        service.update(db_session, org_id=org.id, actor=admin, changes={"accounts": False})
        assert not service.record_contribution(
            db_session, org_id=org.id, table="account", records=10, source="r2/account"
        )
        assert service.record_contribution(
            db_session, org_id=org.id, table="contact", records=10, source="r2/contact"
        )
        org.data_sharing_contract_opt_out = True
        db_session.flush()
        assert not service.record_contribution(
            db_session, org_id=org.id, table="contact", records=10, source="r3/contact"
        )
        assert sum(d.total for d in service.contributions(db_session, org.id)) == 10
