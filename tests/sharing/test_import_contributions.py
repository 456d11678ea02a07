"""Contributions are fed by real import runs from the local Dataverse server."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gtmsync.crm_import import service as import_service
from gtmsync.sharing import service as sharing_service
from tests.fixtures.connection import ConnectedOrg


def test_import_runs_feed_contributions_only_while_on(
    connected_org: ConnectedOrg, db_session: Session
) -> None:
    org_id = connected_org.org.id
    runs = import_service.run_import(
        db_session,
        org_id,
        table="account",
        checkpoint=db_session.flush,
        settings=connected_org.settings,
    )
    stored = sum(r.records_stored for r in runs)
    assert stored > 0
    assert sharing_service.collect_import_contributions(db_session, org_id) == len(
        [r for r in runs if r.records_stored]
    )
    assert sharing_service.collect_import_contributions(db_session, org_id) == 0  # once per run
    (day,) = sharing_service.contributions(db_session, org_id)
    assert day.counts == {"accounts": stored}

    sharing_service.update(
        db_session, org_id=org_id, actor=connected_org.admin, changes={"people": False}
    )
    people = import_service.run_import(
        db_session,
        org_id,
        table="contact",
        checkpoint=db_session.flush,
        settings=connected_org.settings,
    )
    assert sum(r.records_stored for r in people) > 0
    assert sharing_service.collect_import_contributions(db_session, org_id) == 0
    (day,) = sharing_service.contributions(db_session, org_id)
    assert "people" not in day.counts
