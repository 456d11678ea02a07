"""Required privileges through the local server's `RetrieveUserPrivileges`."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from gtmsync.connection import privileges
from gtmsync.dataverse_local.server import ServerHandle
from tests.fixtures.connection import ConnectedOrg


def _systemuser(server: ServerHandle, upn: str) -> uuid.UUID:
    row = server.store.find_systemuser(aad_object_id=server.directory.user_by_upn(upn).object_id)
    assert row is not None
    return uuid.UUID(str(row["systemuserid"]))


class TestRequiredPrivileges:
    def test_system_administrator_has_everything(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        with connected_org.client(db_session) as client:
            me = client.who_am_i()
            assert privileges.missing_privileges(client, me.user_id) == []
            held = privileges.held_privileges(client, me.user_id)
        assert {"prvReadUser", "prvReadActivity", "prvWriteLead"} <= held

    def test_other_users_privileges_come_from_their_roles(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        server = connected_org.server
        with connected_org.client(db_session) as client:
            seller = privileges.missing_privileges(
                client, _systemuser(server, "sam.seller@contoso.local")
            )
            reader = privileges.missing_privileges(
                client, _systemuser(server, "robin.reader@contoso.local")
            )
        assert seller == []
        assert [r.label for r in reader] == [
            "Create Account",
            "Write Account",
            "Create Contact",
            "Write Contact",
            "Create Lead",
            "Write Lead",
        ]
