"""Where secrets could leak, as text to grep: the whole database, the tokens really issued.

Shared by tests/connection/test_secrets.py (in-process, caplog) and
tests/security/test_secrets.py (the real hub process and its log).
"""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.connection import gateway, token_store
from gtmsync.db.unit_of_work import session_scope
from gtmsync.settings import Settings


def database_dump(engine: sa.Engine) -> str:
    """Every row of every table, every column, as text."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    parts: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


def issued_tokens(
    settings: Settings, factory: sessionmaker[Session], org_id: uuid.UUID
) -> set[str]:
    """The access, refresh and ID tokens the identity provider issued to the org's connection,
    read from the MSAL cache after unsealing it (the only place they exist in clear)."""
    with session_scope(factory) as session:
        integration = gateway.require_integration(session, org_id)
        assert integration.token_cache is not None
        cache = json.loads(token_store.unseal(settings, integration.token_cache))
    tokens = {
        str(entry["secret"])
        for section in ("AccessToken", "RefreshToken", "IdToken")
        for entry in cache.get(section, {}).values()
    }
    assert len(tokens) >= 3, cache.keys()
    return tokens
