"""Kill a run anywhere, start it again: it finishes with no duplicate and no lost record.

Counts are checked in the server's store (rows carrying each platform ID), not in the hub's
own bookkeeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.dataverse import TransportError, odata
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.export import service as export_service
from gtmsync.export.models import Export, ExportStatus, ItemStatus
from gtmsync.export.schemas import ExportObject, ExportSettingsDocument
from tests.export.exporting import anchor, company, configure, person, tag
from tests.fixtures.connection import ConnectedOrg, connect_org, connection_settings


class Killed(BaseException):
    """Stands for the process dying: not an Exception, nothing catches it by accident."""


def anchored(
    connected: ConnectedOrg,
    session: Session,
    obj: ExportObject,
    attribute: str | None,
    pids: list[str],
) -> dict[str, int]:
    """How many Dynamics rows carry each platform ID."""
    with connected.client(session) as client:
        column = attribute or anchor(client, obj).attribute
        counts = dict.fromkeys(pids, 0)
        for pid in pids:
            counts[pid] = len(list(client.query(obj.entity_set, filter=odata.eq(column, pid))))
        return counts


def plan(session: Session, connected: ConnectedOrg, obj: ExportObject, ids: list[str]) -> Export:
    return export_service.plan(
        session,
        org_id=connected.org.id,
        user_id=connected.seller.id,
        obj=obj,
        platform_ids=ids,
        settings=connected.settings,
    )


def run(
    session: Session,
    connected: ConnectedOrg,
    export: Export,
    *,
    checkpoint: Callable[[], None] | None = None,
    after_batch: Callable[[int], None] | None = None,
) -> Export:
    return export_service.run(
        session,
        connected.org.id,
        export.id,
        checkpoint=checkpoint or session.commit,
        after_batch=after_batch,
        settings=connected.settings,
        batch_size=2,
    )


class TestResume:
    def test_killed_after_a_batch_then_resumed(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        pids = [company(db_session, f"Resume {i} {t}").platform_id for i in range(5)]
        export = plan(db_session, connected_org, ExportObject.ACCOUNT, pids)

        def die(number: int) -> None:
            if number == 1:
                raise Killed

        with pytest.raises(Killed):
            run(db_session, connected_org, export, after_batch=die)
        db_session.refresh(export)
        assert export.status == ExportStatus.INTERRUPTED
        assert export.processed == 2
        assert (
            sum(anchored(connected_org, db_session, ExportObject.ACCOUNT, None, pids).values()) == 2
        )
        done = run(db_session, connected_org, export)
        assert done.status == ExportStatus.COMPLETED
        assert anchored(
            connected_org, db_session, ExportObject.ACCOUNT, None, pids
        ) == dict.fromkeys(pids, 1)
        statuses = {i.status for i in export_service.items(db_session, done)}
        assert statuses == {ItemStatus.CREATED}

    def test_written_but_not_checkpointed_is_not_written_twice(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        pids = [company(db_session, f"Lost {i} {t}").platform_id for i in range(4)]
        export = plan(db_session, connected_org, ExportObject.ACCOUNT, pids)
        db_session.commit()
        calls = 0

        def checkpoint() -> None:  # the process dies after the 1st batch's writes, before commit
            nonlocal calls
            calls += 1
            if calls == 2:  # 1: "running", 2: after batch 1
                db_session.rollback()
                raise Killed
            if calls > 2:
                raise Killed
            db_session.commit()

        with pytest.raises(Killed):
            run(db_session, connected_org, export, checkpoint=checkpoint)
        db_session.rollback()
        db_session.expire_all()
        again = db_session.get(Export, export.id)
        assert again is not None
        assert again.status == ExportStatus.RUNNING  # what the dead process left
        assert (
            sum(anchored(connected_org, db_session, ExportObject.ACCOUNT, None, pids).values()) == 2
        )
        done = run(db_session, connected_org, again)
        assert done.status == ExportStatus.COMPLETED
        assert anchored(
            connected_org, db_session, ExportObject.ACCOUNT, None, pids
        ) == dict.fromkeys(pids, 1)

    def test_dropped_batch_without_an_alternate_key_resumes_by_lookup(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        """The admin picked their own platform-ID column (no key on it): creates are plain
        POSTs, never resent blindly; the resumed run finds what the dropped batch made."""
        t = tag()
        schema = f"new_Pid{t}"
        column = schema.lower()
        with connected_org.client(db_session) as client:
            client.metadata.create_string_attribute("lead", schema_name=schema, label="Our ID")
        with connected_org.client(db_session) as client:
            for _ in range(2):  # rows sharing a value: Dataverse refuses a key on the column
                client.create("leads", {"lastname": f"Shared{t}", "subject": "x", column: t})

        def own_column(document: ExportSettingsDocument) -> None:
            document.preferences.objects[ExportObject.LEAD].platform_id_attribute = column

        configure(db_session, connected_org, own_column)
        pids = [person(db_session, "Lee", f"Dropped{i}{t}").platform_id for i in range(4)]
        export = plan(db_session, connected_org, ExportObject.LEAD, pids)
        with connected_org.client(db_session) as client:
            keys = client.metadata.alternate_keys("lead")
        assert not any(k.attributes == (column,) for k in keys)
        rule = connected_org.server.faults.add(
            FaultRule(
                kind="drop_batch", method="POST", path=r"\$batch", after_operations=1, count=1
            )
        )
        with pytest.raises(TransportError):
            run(db_session, connected_org, export)
        assert rule.injected == 1
        assert export.status == ExportStatus.INTERRUPTED
        # The first operation of the dropped batch ran: one lead exists already.
        assert (
            sum(anchored(connected_org, db_session, ExportObject.LEAD, column, pids).values()) == 1
        )
        done = run(db_session, connected_org, export)
        assert done.status == ExportStatus.COMPLETED
        assert anchored(
            connected_org, db_session, ExportObject.LEAD, column, pids
        ) == dict.fromkeys(pids, 1)


_CHILD = textwrap.dedent(
    """
    import os, signal, sys, uuid
    from gtmsync.db.engine import create_engine, create_session_factory
    from gtmsync.export import service as export_service
    from gtmsync.settings import get_settings

    org_id, export_id = uuid.UUID(sys.argv[1]), uuid.UUID(sys.argv[2])
    factory = create_session_factory(create_engine(get_settings().db_url))
    session = factory()

    def die(number):
        if number == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    export_service.run(session, org_id, export_id, checkpoint=session.commit,
                       after_batch=die, batch_size=2)
    """
)


class TestSigkill:
    def test_process_killed_with_sigkill_then_resumed(
        self,
        dataverse: ServerHandle,
        session_factory: sessionmaker[Session],
        database_url: str,
        tmp_path: Path,
    ) -> None:
        settings = connection_settings(dataverse, tmp_path)
        with session_factory() as session:
            connected = connect_org(session, dataverse, settings)
            t = tag()
            pids = [company(session, f"Sigkill {i} {t}").platform_id for i in range(5)]
            export = plan(session, connected, ExportObject.ACCOUNT, pids)
            session.commit()
            org_id, export_id = connected.org.id, export.id
        env = {
            **os.environ,
            "GTMSYNC_DATABASE_URL": database_url,
            "GTMSYNC_SECRET_KEY": settings.resolved_secret_key(),
            "GTMSYNC_MODE": settings.mode.value,
            "GTMSYNC_CA_BUNDLE": str(dataverse.ca_bundle),
            "GTMSYNC_DATA_DIR": str(tmp_path),
        }
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(org_id), str(export_id)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
        with session_factory() as session:
            left = session.get(Export, export_id)
            assert left is not None
            assert left.status == ExportStatus.RUNNING  # it never got to say otherwise
            assert left.processed == 2
            connected.org = session.merge(connected.org)
            assert sum(anchored(connected, session, ExportObject.ACCOUNT, None, pids).values()) == 2
            done = export_service.run(
                session, org_id, export_id, checkpoint=session.commit, settings=settings
            )
            assert done.status == ExportStatus.COMPLETED
            assert anchored(connected, session, ExportObject.ACCOUNT, None, pids) == dict.fromkeys(
                pids, 1
            )
