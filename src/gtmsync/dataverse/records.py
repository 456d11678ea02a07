"""Typed views over Dataverse JSON rows and pages.

Dataverse puts labels and lookup details in *annotations* next to the value
(`industrycode@OData.Community.Display.V1.FormattedValue`,
`_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname`). `Record` separates them from the
plain values so callers ask `record.formatted("industrycode")` instead of spelling
annotation names, and `record.lookup("_ownerid_value")` returns one typed `Lookup`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"


@dataclass(frozen=True)
class Lookup:
    """A lookup column's value: the target id, its table and (when annotated) its name."""

    id: uuid.UUID
    logical_name: str | None
    name: str | None
    navigation_property: str | None


class Record(Mapping[str, Any]):
    """One row: a read-only mapping of plain values plus its annotations."""

    __slots__ = ("_annotations_by_prop", "_odata_values", "_raw", "_values")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        # Plain values are split off at once; annotations are grouped only when asked for
        # (`formatted` reads its key directly): a sync page holds 5,000 rows of which most
        # annotations are never looked at.
        self._values: dict[str, Any] = {k: v for k, v in raw.items() if "@" not in k}
        self._raw = raw
        self._annotations_by_prop: dict[str, dict[str, Any]] | None = None
        self._odata_values: dict[str, Any] | None = None

    def _split_annotations(self) -> None:
        annotations: dict[str, dict[str, Any]] = {}
        odata: dict[str, Any] = {}
        if len(self._values) != len(self._raw):
            for key, value in self._raw.items():
                if "@" not in key:
                    continue
                if key[0] == "@":
                    odata[key[1:]] = value
                else:
                    prop, _, term = key.partition("@")
                    annotations.setdefault(prop, {})[term] = value
        self._annotations_by_prop = annotations
        self._odata_values = odata

    @property
    def _annotations(self) -> dict[str, dict[str, Any]]:
        if self._annotations_by_prop is None:
            self._split_annotations()
        assert self._annotations_by_prop is not None
        return self._annotations_by_prop

    @property
    def _odata(self) -> dict[str, Any]:
        if self._odata_values is None:
            self._split_annotations()
        assert self._odata_values is not None
        return self._odata_values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping's inherited `get` goes through __getitem__ and a KeyError per missing
        # key; an import reads several values of millions of records through here.
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Record({self._values!r})"

    @property
    def etag(self) -> str | None:
        value = self._odata.get("odata.etag")
        return str(value) if value is not None else None

    @property
    def odata(self) -> Mapping[str, Any]:
        """Row-level annotations without the leading `@` (`odata.etag`, `odata.context`)."""
        return self._odata

    def annotations(self, prop: str) -> Mapping[str, Any]:
        return self._annotations.get(prop, {})

    def formatted(self, prop: str) -> str | None:
        value = self._raw.get(f"{prop}@{FORMATTED}")
        return str(value) if value is not None else None

    def lookup(self, prop: str) -> Lookup | None:
        """The lookup in `_x_value`; `prop` may be given as `x` or `_x_value`."""
        key = prop if prop.startswith("_") and prop.endswith("_value") else f"_{prop}_value"
        raw = self._values.get(key)
        if raw is None:
            return None
        notes = self._annotations.get(key, {})
        return Lookup(
            id=uuid.UUID(str(raw)),
            logical_name=notes.get(LOOKUP_LOGICAL_NAME),
            name=notes.get(FORMATTED),
            navigation_property=notes.get(ASSOCIATED_NAVIGATION),
        )

    def id(self, primary_key: str) -> uuid.UUID:
        return uuid.UUID(str(self._values[primary_key]))

    def to_dict(self) -> dict[str, Any]:
        return dict(self._values)


@dataclass(frozen=True)
class Page:
    """One page of a collection read; keeps its response for call accounting and headers."""

    records: list[Record]
    next_link: str | None
    delta_link: str | None
    count: int | None
    response: httpx.Response = field(repr=False)

    @classmethod
    def from_response(cls, response: httpx.Response) -> Page:
        return cls.from_body(response.json(), response)

    @classmethod
    def from_body(cls, body: Mapping[str, Any], response: httpx.Response) -> Page:
        rows = body.get("value", [])
        return cls(
            records=[Record(row) for row in rows],
            next_link=body.get("@odata.nextLink") or body.get("odata.nextLink"),
            delta_link=body.get("@odata.deltaLink") or body.get("odata.deltaLink"),
            count=body.get("@odata.count"),
            response=response,
        )

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)
