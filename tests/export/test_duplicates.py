"""Bulk duplicate look-ups: every criterion for every record in one `$batch` request."""

from __future__ import annotations

import time
import uuid

from sqlalchemy.orm import Session

from gtmsync.export.duplicates import AccountProbe, InQuery, fetch_in, find_accounts
from gtmsync.export.schemas import ExportObject
from tests.export.exporting import SPECIAL, Calls, anchor, tag
from tests.fixtures.connection import ConnectedOrg

ODD_NAMES = ["O'Neil's", "AT&T #2", "100% + more", "a/b?c=d", "café ünïcødé", 'say "hi"']


class TestFetchIn:
    def test_thousands_of_values_in_one_request_with_odata_special_characters(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        names = [f"{n} {t}" for n in ODD_NAMES]
        with connected_org.client(db_session) as client:
            ids = {client.create("accounts", {"name": n}) for n in names}
            calls = Calls()
            client.on_request = calls
            misses = [f"missing {i} {t}" for i in range(3000)]
            [found, none] = fetch_in(
                client,
                [
                    InQuery("accounts", "name", [*misses, *names], ["accountid", "name"]),
                    InQuery("contacts", "emailaddress1", [], ["contactid"]),
                ],
            )
        assert {uuid.UUID(r["accountid"]) for r in found} == ids
        assert none == []
        assert calls.count == 1  # several In() chunks, one $batch
        assert calls.requests[0].operations > 1


class TestAccounts:
    def test_order_and_newest_first(self, connected_org: ConnectedOrg, db_session: Session) -> None:
        t = tag()
        with connected_org.client(db_session) as client:
            acct = anchor(client, ExportObject.ACCOUNT)
            older = client.create("accounts", {"name": f"{SPECIAL} {t}"})
            newer = client.create("accounts", {"name": f"{SPECIAL} {t}"})
            time.sleep(1.1)  # modifiedon has whole seconds: make "most recent" unambiguous
            client.update("accounts", newer, {"description": "touched"})
            by_id = client.create("accounts", {"name": f"Elsewhere {t}", acct.attribute: f"Z-{t}"})
            matches = find_accounts(
                client,
                acct.attribute,
                [
                    AccountProbe(f"Y-{t}", f"{SPECIAL} {t}"),
                    # The ID wins over a name that also matches.
                    AccountProbe(f"Z-{t}", f"{SPECIAL} {t}"),
                    AccountProbe(f"W-{t}", f"Nobody {t}", f"https://nobody-{t}.example"),
                ],
            )
        assert [m.id for m in matches[f"Y-{t}"]] == [newer, older]
        assert {m.matched_by for m in matches[f"Y-{t}"]} == {"name"}
        assert [(m.id, m.matched_by) for m in matches[f"Z-{t}"]] == [(by_id, "platform_id")]
        assert matches[f"W-{t}"] == []
