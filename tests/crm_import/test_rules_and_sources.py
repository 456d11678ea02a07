from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import GtmObject, RunKind, RunStatus
from gtmsync.crm_import.schemas import (
    Condition,
    ConditionGroup,
    FieldMap,
    ObjectRules,
    Operator,
    RuleSet,
    Source,
)
from gtmsync.kit.errors import UserError
from tests.crm_import.conftest import Importer


def _exclude_prefix(prefix: str) -> RuleSet:
    return RuleSet(
        rules=[
            ObjectRules(
                source_key="account:account",
                groups=[
                    ConditionGroup(
                        conditions=[
                            Condition(attribute="name", operator=Operator.STARTS_WITH, value=prefix)
                        ]
                    )
                ],
            )
        ]
    )


class TestImportRules:
    def test_rules_exclude_remove_and_restore_records(self, importer: Importer) -> None:
        importer.one("account")
        with importer.client() as client:
            a = client.create("accounts", {"name": "Zzexcluded One"})
            b = client.create("accounts", {"name": "Kept Then Excluded"})
        importer.one("account")
        assert {a, b} <= set(importer.stored_ids(GtmObject.ACCOUNT))

        import_service.save_rules(
            importer.session,
            importer.org_id,
            _exclude_prefix("zzex"),
            actor=None,
            settings=importer.cfg,
        )
        assert importer.cursor("account:account").backfill_reason == "import rule change"
        run = importer.one("account")
        assert (run.kind, run.reason) == (RunKind.BACKFILL, "import rule change")
        assert run.records_excluded >= 1
        stored = set(importer.stored_ids(GtmObject.ACCOUNT))
        assert a not in stored  # already stored, now removed
        assert b in stored

        # an update that makes a stored record match the rule removes it on the next run
        with importer.client() as client:
            client.update("accounts", b, {"name": "ZZEXcluded Two"})
        run = importer.one("account")
        assert run.kind == RunKind.INCREMENTAL
        assert run.records_excluded == 1
        assert b not in set(importer.stored_ids(GtmObject.ACCOUNT))

        # removing the rule brings them back (rule change → backfill)
        import_service.save_rules(
            importer.session, importer.org_id, RuleSet(), actor=None, settings=importer.cfg
        )
        run = importer.one("account")
        assert run.kind == RunKind.BACKFILL
        assert {a, b} <= set(importer.stored_ids(GtmObject.ACCOUNT))

    def test_and_or_groups(self, importer: Importer) -> None:
        with importer.client() as client:
            both = client.create("accounts", {"name": "Qqgroup Both", "tickersymbol": "QQ"})
            only_name = client.create("accounts", {"name": "Qqgroup Name"})
            other = client.create("accounts", {"name": "Other Co", "tickersymbol": "OTH"})
        rules = RuleSet(
            rules=[
                ObjectRules(
                    source_key="account:account",
                    match="any",
                    groups=[
                        ConditionGroup(  # name starts with qqgroup AND ticker is QQ
                            match="all",
                            conditions=[
                                Condition(
                                    attribute="name", operator=Operator.STARTS_WITH, value="qqgroup"
                                ),
                                Condition(
                                    attribute="tickersymbol", operator=Operator.EQ, value="qq"
                                ),
                            ],
                        ),
                        ConditionGroup(  # OR ticker is OTH
                            conditions=[
                                Condition(
                                    attribute="tickersymbol", operator=Operator.IN, value="oth, xyz"
                                )
                            ]
                        ),
                    ],
                )
            ]
        )
        import_service.save_rules(
            importer.session, importer.org_id, rules, actor=None, settings=importer.cfg
        )
        run = importer.one("account")
        assert run.status == RunStatus.SUCCEEDED, run.errors
        stored = set(importer.stored_ids(GtmObject.ACCOUNT))
        assert only_name in stored
        assert both not in stored
        assert other not in stored

    def test_rule_on_unknown_column_is_refused(self, importer: Importer) -> None:
        rules = _exclude_prefix("x")
        rules.rules[0].groups[0].conditions[0].attribute = "nosuchcolumn"
        with pytest.raises(UserError, match="nosuchcolumn"):
            import_service.save_rules(
                importer.session, importer.org_id, rules, actor=None, settings=importer.cfg
            )


@pytest.fixture
def custom_table(importer: Importer) -> Iterator[str]:
    suffix = uuid.uuid4().hex[:6]
    logical = f"new_partner{suffix}"
    with importer.client() as client:
        client.request(
            "POST",
            "EntityDefinitions",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
                "SchemaName": f"new_Partner{suffix}",
                "DisplayName": {"LocalizedLabels": [{"Label": "Partner", "LanguageCode": 1033}]},
                "OwnershipType": "UserOwned",
                "ChangeTrackingEnabled": True,
                "Attributes": [
                    {
                        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                        "AttributeType": "String",
                        "SchemaName": "new_Name",
                        "IsPrimaryName": True,
                        "MaxLength": 100,
                    }
                ],
            },
            idempotent=False,
        )
        client.metadata.refresh()
    yield logical
    with importer.client() as client:
        client.request("DELETE", f"EntityDefinitions(LogicalName='{logical}')", idempotent=True)


class TestSources:
    def test_custom_object_feeds_gtm_accounts(self, importer: Importer, custom_table: str) -> None:
        assert custom_table in import_service.custom_tables(
            importer.session, importer.org_id, settings=importer.cfg
        )
        entity_set = f"{custom_table}s"
        with importer.client() as client:
            ids = [client.create(entity_set, {"new_name": f"Partner {i}"}) for i in range(3)]
        doc = import_service.get_mapping(importer.session, importer.org_id, settings=importer.cfg)
        doc.sources.append(
            Source(
                table=custom_table,
                object=GtmObject.ACCOUNT,
                fields=[FieldMap(attribute="new_name", field="name")],
            )
        )
        import_service.save_mapping(
            importer.session, importer.org_id, doc, actor=None, settings=importer.cfg
        )
        run = importer.one(custom_table)
        assert run.status == RunStatus.SUCCEEDED, run.errors
        rows = import_service.records(
            importer.session, importer.org_id, GtmObject.ACCOUNT, custom_table
        )
        assert {r.dynamics_id: r.name for r in rows} == {
            i: f"Partner {n}" for n, i in enumerate(ids)
        }

    def test_role_records_from_a_lookup_field(self, importer: Importer) -> None:
        account_ids = sorted(importer.store_ids("account"))[:2]
        contact_id = sorted(importer.store_ids("contact"))[0]
        with importer.client() as client:
            for account_id in account_ids:
                client.update(
                    "accounts",
                    account_id,
                    {"primarycontactid@odata.bind": f"/contacts({contact_id})"},
                )
        doc = import_service.get_mapping(importer.session, importer.org_id, settings=importer.cfg)
        doc.sources.append(
            Source(
                table="account",
                object=GtmObject.ROLE,
                record_id_attribute="accountid",
                related_id_attribute="primarycontactid",
                role_name="Primary Contact",
            )
        )
        import_service.save_mapping(
            importer.session, importer.org_id, doc, actor=None, settings=importer.cfg
        )
        runs = {r.source_key: r for r in importer.run(table="account")}
        role_run = runs["role:account:primarycontactid"]
        assert role_run.status == RunStatus.SUCCEEDED, role_run.errors
        roles = import_service.records(importer.session, importer.org_id, GtmObject.ROLE)
        with_contact = {r.dynamics_id for r in roles if r.related_id == contact_id}
        assert set(account_ids) <= with_contact
        assert all(r.record_id == r.dynamics_id for r in roles)  # the ID field was the row's own
        assert {r.role for r in roles} == {"Primary Contact"}
        assert {r.record_table for r in roles} == {"account"}


class TestUnreadableAttributes:
    def test_secured_columns_are_not_offered_or_imported(self, importer: Importer) -> None:
        doc = import_service.get_mapping(importer.session, importer.org_id, settings=importer.cfg)
        source = doc.source("account:account")
        assert source is not None
        assert "telephone1" in {f.attribute for f in source.fields}
        import_service.save_mapping(
            importer.session, importer.org_id, doc, actor=None, settings=importer.cfg
        )
        importer.server.security.secure_column("account", "telephone1")
        try:
            with importer.client() as client:
                schemas = import_service.refresh_schemas(
                    importer.session, importer.org_id, client, ["account"]
                )
            option = {o.name: o for o in schemas["account"].options()}["telephone1"]
            assert not option.readable
            assert "column security" in (option.reason or "")
            run = importer.one("account", backfill=True)
            assert run.status == RunStatus.SUCCEEDED, run.errors
            rows = import_service.records(importer.session, importer.org_id, GtmObject.ACCOUNT)
            assert rows
            assert all(r.hq_phone is None for r in rows)
            assert any(r.name for r in rows)
            with pytest.raises(UserError, match="column security"):
                import_service.save_mapping(
                    importer.session, importer.org_id, doc, actor=None, settings=importer.cfg
                )
        finally:
            importer.server.security.unsecure_column("account", "telephone1")
