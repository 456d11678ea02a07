"""One Web API call as the data plane sees it, and its reply, independent of the ASGI layer.

`$batch` replays inner requests through the same dispatcher as top-level ones, so handlers
take a `Call` (method, path, query, headers, body, open connection, principal) and return a
`Reply` instead of touching Starlette objects.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from gtmsync.dataverse_local import errors
from gtmsync.dataverse_local.principal import Access, Principal
from gtmsync.dataverse_local.schema import Table
from gtmsync.dataverse_local.store import Store

ODATA_JSON = "application/json; odata.metadata=minimal"
MAX_PAGE_SIZE = 5000


@dataclass(frozen=True)
class WebApiSettings:
    """Knobs of the data plane; defaults are Dataverse's documented ones."""

    change_tracking_expiry_days: int = 7  # organization.expirechangetrackingindays (spec §6)
    max_page_size: int = MAX_PAGE_SIZE
    batch_limit: int = 1000
    duplicate_detection_enabled: bool = True


class Headers:
    """Case-insensitive request headers that keep repeated values (`Prefer` may repeat)."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self.items = list(items or [])

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.items if k.lower() == lname]


def split_prefer(values: list[str]) -> dict[str, str]:
    """`Prefer` values → {name: value}; commas inside quoted values do not split."""
    prefs: dict[str, str] = {}
    for header in values:
        parts: list[str] = []
        buf: list[str] = []
        quoted = False
        for ch in header:
            if ch == '"':
                quoted = not quoted
            if ch == "," and not quoted:
                parts.append("".join(buf))
                buf = []
            else:
                buf.append(ch)
        parts.append("".join(buf))
        for part in parts:
            name, _, value = part.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


@dataclass
class Call:
    store: Store
    conn: Connection
    principal: Principal
    settings: WebApiSettings
    service_root: str  # e.g. https://host/api/data/v9.2
    method: str
    path: str  # after the service root, no leading slash
    query: dict[str, str]
    headers: Headers
    body: bytes = b""
    in_batch: bool = False
    prefer: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.prefer = split_prefer(self.headers.get_all("Prefer"))

    def metadata_url(self, fragment: str) -> str:
        """An `@odata.context` value: `<service root>/$metadata#<fragment>`."""
        return f"{self.service_root}/$metadata#{fragment}"

    def json_body(self) -> Any:
        if not self.body.strip():
            raise errors.bad_request("A request body is required.", "0x80048d19")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise errors.DataverseLocalError(
                400,
                "0x80048d19",
                f"Error identified in Payload provided by the user: invalid JSON ({exc}).",
            ) from exc

    def require(self, table: Table, access: Access) -> None:
        if not self.principal.can(table.name, access):
            raise errors.missing_privilege(
                self.principal.user_id, str(access), table.name, table.object_type_code
            )

    @property
    def annotations(self) -> str:
        return self.prefer.get("odata.include-annotations", "")

    def wants_annotation(self, name: str) -> bool:
        wanted = [w.strip() for w in self.annotations.split(",") if w.strip()]
        for pattern in wanted:
            if pattern in {"*", name} or (pattern.endswith("*") and name.startswith(pattern[:-1])):
                return True
        return False

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(data: Any) -> bytes:
    return json.dumps(data, default=_default, ensure_ascii=False).encode()


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
        out = [("Content-Type", ODATA_JSON), ("OData-Version", "4.0")]
        out.extend((headers or {}).items())
        return cls(status, out, dumps(data))

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, [("OData-Version", "4.0"), *(headers or {}).items()])

    @classmethod
    def error(cls, exc: errors.DataverseLocalError, *, details: bool = False) -> Reply:
        return cls(exc.status, list(exc.headers().items()), exc.body(details=details))

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)
