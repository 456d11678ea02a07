from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.mapping import DEFAULT_SOURCES
from gtmsync.crm_import.models import CursorMode, GtmObject, RunKind, RunStatus
from gtmsync.crm_import.schemas import FieldMap
from gtmsync.kit.clock import utc_now
from gtmsync.kit.errors import UserError
from tests.crm_import.conftest import Importer


class TestInitialBackfill:
    def test_first_run_is_a_backfill_of_every_account(self, importer: Importer) -> None:
        run = importer.one("account")
        assert run.status == RunStatus.SUCCEEDED, (run.errors, run.message)
        assert run.kind == RunKind.BACKFILL
        assert run.reason == "initial connection"
        expected = importer.store_ids("account")
        stored = importer.stored_ids(GtmObject.ACCOUNT, "account")
        assert sorted(stored) == sorted(expected)
        assert run.records_read == len(expected) == run.records_stored
        pages = -(-len(expected) // 50)
        # + metadata: the table list and each default table's columns, read once
        assert pages < run.api_calls <= pages + 1 + len(DEFAULT_SOURCES)

        again = importer.one("account")
        assert again.kind == RunKind.INCREMENTAL
        assert again.status == RunStatus.SUCCEEDED
        assert again.api_calls == 1
        assert again.records_read == 0


class TestChangeTracking:
    def test_incremental_applies_creates_updates_and_deletes(self, importer: Importer) -> None:
        importer.one("account")
        with importer.client() as client:
            created = client.create("accounts", {"name": "Delta Created Co"})
            (victim, changed, *_) = sorted(importer.store_ids("account") - {created})
            client.update("accounts", changed, {"name": "Delta Renamed Co"})
            client.delete("accounts", victim)
        run = importer.one("account")
        assert run.kind == RunKind.INCREMENTAL, run.errors
        assert run.status == RunStatus.SUCCEEDED
        assert run.records_deleted == 1
        assert run.records_stored == 2
        assert run.api_calls == 1
        stored = set(importer.stored_ids(GtmObject.ACCOUNT, "account"))
        assert stored == importer.store_ids("account")
        assert victim not in stored
        names = {
            r.dynamics_id: r.name
            for r in import_service.records(importer.session, importer.org_id, GtmObject.ACCOUNT)
        }
        assert names[changed] == "Delta Renamed Co"
        assert names[created] == "Delta Created Co"

    def test_expired_delta_link_falls_back_to_a_backfill(self, importer: Importer) -> None:
        importer.one("account")
        cursor = importer.cursor("account:account")
        cursor.delta_link = cursor.delta_link.replace("deltatoken=", "deltatoken=garbage")  # type: ignore[union-attr]
        importer.session.commit()
        run = importer.one("account")
        assert run.status == RunStatus.SUCCEEDED, run.errors
        assert run.kind == RunKind.BACKFILL
        assert run.reason == "delta link expired"
        assert set(importer.stored_ids(GtmObject.ACCOUNT, "account")) == importer.store_ids(
            "account"
        )


class TestWatermarkFallback:
    def test_table_without_change_tracking_uses_modifiedon(self, importer: Importer) -> None:
        with importer.client() as client:
            client.request(
                "PUT",
                "EntityDefinitions(LogicalName='product')",
                json={"ChangeTrackingEnabled": False},
                idempotent=True,
            )
        try:
            first = importer.one("product")
            assert first.status == RunStatus.SUCCEEDED, first.errors
            assert first.kind == RunKind.BACKFILL
            cursor = importer.cursor("product:product")
            assert cursor.mode == CursorMode.WATERMARK
            assert cursor.watermark is not None
            assert set(importer.stored_ids(GtmObject.PRODUCT)) == importer.store_ids("product")
            with importer.client() as client:
                new_id = client.create(
                    "products",
                    {"name": "Watermark Widget", "productnumber": f"WM-{uuid.uuid4().hex[:8]}"},
                )
            second = importer.one("product")
            assert second.kind == RunKind.INCREMENTAL
            assert second.status == RunStatus.SUCCEEDED, second.errors
            assert new_id in importer.stored_ids(GtmObject.PRODUCT)
            # the closed start re-reads the lag window; rows already seen are not doubled
            assert len(importer.stored_ids(GtmObject.PRODUCT)) == len(importer.store_ids("product"))
        finally:
            with importer.client() as client:
                client.request(
                    "PUT",
                    "EntityDefinitions(LogicalName='product')",
                    json={"ChangeTrackingEnabled": True},
                    idempotent=True,
                )


class TestBackfillTriggers:
    def test_sync_now_runs_a_full_backfill(self, importer: Importer) -> None:
        importer.one("account")
        keys = import_service.sync_now(
            importer.session, importer.org_id, actor=None, settings=importer.cfg
        )
        assert "account:account" in keys
        run = importer.one("account")
        assert (run.kind, run.reason) == (RunKind.BACKFILL, "sync now")
        assert run.records_read == len(importer.store_ids("account"))

    def test_mapping_change_backfills_and_fills_a_custom_field(self, importer: Importer) -> None:
        importer.one("account")
        doc = import_service.create_custom_field(
            importer.session,
            importer.org_id,
            GtmObject.ACCOUNT,
            "Ticker",
            actor=None,
            settings=importer.cfg,
        )
        source = doc.source("account:account")
        assert source is not None
        source.fields.append(FieldMap(attribute="tickersymbol", field="custom.ticker"))
        with importer.client() as client:
            target = sorted(importer.store_ids("account"))[0]
            client.update("accounts", target, {"tickersymbol": "TICK"})
        import_service.save_mapping(
            importer.session, importer.org_id, doc, actor=None, settings=importer.cfg
        )
        assert importer.cursor("account:account").backfill_reason == "mapping change"
        run = importer.one("account")
        assert (run.kind, run.reason) == (RunKind.BACKFILL, "mapping change")
        rows = {
            r.dynamics_id: r
            for r in import_service.records(importer.session, importer.org_id, GtmObject.ACCOUNT)
        }
        assert rows[target].custom == {"ticker": "TICK"}

    def test_unknown_gtm_field_is_refused_with_the_fix(self, importer: Importer) -> None:
        doc = import_service.get_mapping(importer.session, importer.org_id, settings=importer.cfg)
        source = doc.source("account:account")
        assert source is not None
        source.fields.append(FieldMap(attribute="name", field="nonsense"))
        with pytest.raises(UserError, match="not a field of the GTM account") as info:
            import_service.save_mapping(
                importer.session, importer.org_id, doc, actor=None, settings=importer.cfg
            )
        assert "Choose one of" in (info.value.fix or "")


class TestKillAndResume:
    def test_killed_backfill_resumes_from_its_last_committed_page(self, importer: Importer) -> None:
        class Killed(BaseException):
            pass

        pages = 0

        def kill_after_three_pages(info: object) -> None:
            nonlocal pages
            if getattr(info, "resource", "") == "accounts":
                pages += 1
                if pages == 4:
                    raise Killed

        with pytest.raises(Killed):
            importer.run(table="account", on_request=kill_after_three_pages)
        importer.session.rollback()  # what a dead process leaves: the last committed page
        committed = importer.stored_ids(GtmObject.ACCOUNT, "account")
        assert len(committed) == 150
        cursor = importer.cursor("account:account")
        assert cursor.backfill_next_link is not None
        cursor.locked_until = None  # the dead run's lease expires
        importer.session.commit()

        run = importer.one("account")
        assert run.status == RunStatus.SUCCEEDED, run.errors
        assert run.kind == RunKind.BACKFILL
        expected = importer.store_ids("account")
        assert run.records_read == len(expected) - 150  # not from the start
        stored = importer.stored_ids(GtmObject.ACCOUNT, "account")
        assert len(stored) == len(set(stored)) == len(expected)
        assert set(stored) == expected


class TestOneRunAtATime:
    def test_a_second_run_of_the_same_source_is_skipped(self, importer: Importer) -> None:
        importer.one("account")
        cursor = importer.cursor("account:account")
        cursor.locked_by, cursor.locked_until = "other-worker", utc_now() + timedelta(minutes=5)
        importer.session.commit()
        run = importer.one("account")
        assert run.status == RunStatus.SKIPPED
        assert run.api_calls == 0
        assert "in progress" in (run.message or "")
        assert importer.cursor("account:account").locked_by == "other-worker"
