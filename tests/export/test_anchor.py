"""The platform-ID anchor column and its alternate key, through the metadata API."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from gtmsync.export.anchor import DEFAULT_ATTRIBUTE, ensure_anchor, find_anchor
from gtmsync.export.schemas import ExportObject
from gtmsync.kit.errors import UserError
from tests.export.exporting import Calls, tag
from tests.fixtures.connection import ConnectedOrg


class TestEnsureAnchor:
    def test_creates_column_and_key_once(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        with connected_org.client(db_session) as client:
            made = ensure_anchor(client, ExportObject.CONTACT)
            assert made.attribute == DEFAULT_ATTRIBUTE
            assert made.has_key
            assert DEFAULT_ATTRIBUTE in client.metadata.attributes("contact")
        calls = Calls()
        with connected_org.client(db_session) as client:
            client.on_request = calls
            again = ensure_anchor(client, ExportObject.CONTACT)
        assert again == made
        assert {r.method for r in calls.requests} == {"GET"}  # nothing created twice

    def test_an_admin_chosen_column_is_used_and_keyed(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        schema = f"new_Zi{tag()}"
        with connected_org.client(db_session) as client:
            client.metadata.create_string_attribute("account", schema_name=schema, label="ZI")
            assert find_anchor(client, ExportObject.ACCOUNT, schema.lower()) is not None
            chosen = ensure_anchor(client, ExportObject.ACCOUNT, schema.lower())
        assert chosen.attribute == schema.lower()
        assert chosen.has_key

    def test_a_missing_or_non_text_column_is_refused_naming_the_setting(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        with connected_org.client(db_session) as client:
            assert find_anchor(client, ExportObject.LEAD, "new_nothere") is None
            with pytest.raises(UserError, match="does not exist") as missing:
                ensure_anchor(client, ExportObject.LEAD, "new_nothere")
            with pytest.raises(UserError, match="text"):
                ensure_anchor(client, ExportObject.ACCOUNT, "numberofemployees")
        assert missing.value.field == "preferences.objects.lead.platform_id_attribute"
