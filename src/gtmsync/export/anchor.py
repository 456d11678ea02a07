"""The platform-ID anchor: the Dynamics column that says which platform record a row is.

Every record gtmsync creates carries its platform ID in this column. That makes two things
possible: the first duplicate criterion (seeds' *Duplicate Logic*: "ZoomInfo ID") and
idempotent retries. With an alternate key on the column a create is sent as an upsert
addressed by the key, so a resend after a lost answer updates the row it already made instead
of making a second one; without the key (no privilege to add one) a resumed run first looks
its pending records up by the anchor and only creates the ones that are still missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gtmsync.dataverse import APIError, DataverseClient, PrivilegeError, ValidationError
from gtmsync.export.schemas import ExportObject
from gtmsync.kit.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_ATTRIBUTE = "gtmsync_platformid"
DEFAULT_SCHEMA_NAME = "gtmsync_PlatformId"
ANCHOR_MAX_LENGTH = 100


@dataclass(frozen=True)
class Anchor:
    table: str
    attribute: str
    has_key: bool

    def key(self, platform_id: str) -> dict[str, str]:
        """The alternate-key segment value for one record: `{attribute: platform id}`."""
        return {self.attribute: platform_id}


def find_anchor(
    client: DataverseClient, obj: ExportObject, attribute: str | None = None
) -> Anchor | None:
    """The anchor if its column exists already (read-only: plans use it, runs create it)."""
    table = obj.logical_name
    chosen = attribute or DEFAULT_ATTRIBUTE
    if chosen not in client.metadata.attributes(table):
        return None
    keyed = any(k.attributes == (chosen,) for k in client.metadata.alternate_keys(table))
    return Anchor(table, chosen, keyed)


def ensure_anchor(
    client: DataverseClient, obj: ExportObject, attribute: str | None = None
) -> Anchor:
    """Make sure `obj`'s table has the anchor column (and, when allowed, a key on it).

    `attribute` is the admin's choice (`ObjectPreference.platform_id_attribute`); it must exist
    and be text. Without a choice gtmsync creates `gtmsync_platformid`, which needs the
    privilege to customise the table: when that is refused the message says what to do.
    """
    table = obj.logical_name
    chosen = attribute or DEFAULT_ATTRIBUTE
    attributes = client.metadata.attributes(table)
    info = attributes.get(chosen)
    if info is None and attribute and attribute != DEFAULT_ATTRIBUTE:
        raise UserError(
            f"The platform ID column {attribute!r} does not exist on the Dynamics {table} table.",
            field=f"preferences.objects.{obj.value}.platform_id_attribute",
            fix="Pick an existing text column under Export › Preferences, or clear the choice "
            "to let gtmsync create gtmsync_platformid.",
        )
    if info is None:
        try:
            client.metadata.create_string_attribute(
                table,
                schema_name=DEFAULT_SCHEMA_NAME,
                label="Platform ID",
                max_length=ANCHOR_MAX_LENGTH,
            )
        except PrivilegeError as exc:
            raise UserError(
                f"gtmsync may not add the platform ID column to the Dynamics {table} table: {exc}",
                field=f"preferences.objects.{obj.value}.platform_id_attribute",
                fix="Give the service account the System Customizer role, or create a text "
                "column in Dynamics and pick it under Export › Preferences.",
            ) from exc
        except ValidationError:
            # Another worker (another org's export to the same tenant) created it meanwhile.
            client.metadata.refresh(table)
            if chosen not in client.metadata.attributes(table):
                raise
        info = client.metadata.attributes(table).get(chosen)
        if info is None:  # pragma: no cover - the server named the column differently
            raise UserError(
                f"Dynamics created the platform ID column on {table} under another name.",
                field=f"preferences.objects.{obj.value}.platform_id_attribute",
                fix="Pick the column under Export › Preferences.",
            )
    if info.type not in ("String", "Memo"):
        raise UserError(
            f"The platform ID column {chosen!r} on {table} is a {info.type} column; platform "
            "IDs are text.",
            field=f"preferences.objects.{obj.value}.platform_id_attribute",
            fix="Pick a text (single line of text) column under Export › Preferences.",
        )
    return Anchor(table, chosen, _ensure_key(client, table, chosen))


def _ensure_key(client: DataverseClient, table: str, attribute: str) -> bool:
    if any(key.attributes == (attribute,) for key in client.metadata.alternate_keys(table)):
        return True
    try:
        # One key name per column: an org may anchor on different columns over time.
        client.metadata.create_alternate_key(
            table, schema_name=f"gtmsync_{attribute}_key", attributes=[attribute]
        )
    except APIError as exc:
        client.metadata.refresh(table)  # another worker may have made it at the same moment
        if any(key.attributes == (attribute,) for key in client.metadata.alternate_keys(table)):
            return True
        # No privilege, or existing rows share a value: exports still work, resumes look
        # records up by the anchor before creating them.
        log.warning(
            "no alternate key on the platform ID column; retries will look up before writing",
            extra={"extra_fields": {"table": table, "attribute": attribute, "error": str(exc)}},
        )
        return False
    return any(key.attributes == (attribute,) for key in client.metadata.alternate_keys(table))
