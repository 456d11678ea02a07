"""Pure builders for OData query options as Dataverse reads them.

Values are never pasted into a filter by hand: `literal()` is the one place that turns a
Python value into OData text, so a name like `O'Brien` cannot end a string early and a
GUID is never quoted where Dataverse expects it bare. Array parameters of Dataverse query
functions (`Microsoft.Dynamics.CRM.In`) take **double-quoted JSON strings**, not OData
literals (spec §2.2), which is why `in_()` formats them separately.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeAlias
from urllib.parse import quote

Scalar: TypeAlias = str | int | float | bool | Decimal | uuid.UUID | datetime | date | None

#: Dataverse accepts 32,768 characters in a GET URL; stay well under for headroom.
DEFAULT_MAX_URL_LENGTH = 16_000

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_OPERATORS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
# Characters left readable in query strings; everything else is percent-encoded, including
# `+`, `&`, `#`, `%` and spaces (%20, which every server reads as a space, unlike `+`).
_QUERY_SAFE = "$'(),/:=@*"


def name(value: str) -> str:
    """Validate a column, navigation or path name (`name`, `primarycontactid/fullname`)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid Dataverse column or navigation name: use the logical "
            "name (letters, digits, underscore; '/' between navigation steps)"
        )
    return value


def string_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def datetime_literal(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(
            f"datetime {value.isoformat()} has no time zone: pass a timezone-aware UTC datetime "
            "(Dataverse stores and compares UTC)"
        )
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def literal(value: Scalar) -> str:
    """The OData literal for a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return datetime_literal(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value} cannot be written as an OData number")
        return repr(value)
    if isinstance(value, str):
        return string_literal(value)
    raise TypeError(f"cannot write {type(value).__name__} as an OData literal")


def compare(field: str, op: str, value: Scalar) -> str:
    if op not in _OPERATORS:
        raise ValueError(f"operator {op!r} is not one of {sorted(_OPERATORS)}")
    return f"{name(field)} {op} {literal(value)}"


def eq(field: str, value: Scalar) -> str:
    return compare(field, "eq", value)


def ne(field: str, value: Scalar) -> str:
    return compare(field, "ne", value)


def _string_function(function: str, field: str, value: str) -> str:
    return f"{function}({name(field)},{string_literal(value)})"


def contains(field: str, value: str) -> str:
    return _string_function("contains", field, value)


def startswith(field: str, value: str) -> str:
    return _string_function("startswith", field, value)


def endswith(field: str, value: str) -> str:
    return _string_function("endswith", field, value)


def _join(op: str, clauses: Iterable[str]) -> str:
    parts = [c for c in clauses if c]
    if not parts:
        raise ValueError(f"{op}_() needs at least one clause")
    if len(parts) == 1:
        return parts[0]
    return f" {op} ".join(f"({p})" for p in parts)


def and_(*clauses: str) -> str:
    return _join("and", clauses)


def or_(*clauses: str) -> str:
    return _join("or", clauses)


def not_(clause: str) -> str:
    return f"not ({clause})"


def _json_value(value: Scalar) -> str:
    if isinstance(value, str | uuid.UUID | int | Decimal) and not isinstance(value, bool):
        return json.dumps(str(value), ensure_ascii=False)
    raise TypeError(f"In() values must be strings, numbers or GUIDs, not {type(value).__name__}")


def in_(field: str, values: Sequence[Scalar]) -> str:
    """`Microsoft.Dynamics.CRM.In(PropertyName='f',PropertyValues=["a","b"])`."""
    if not values:
        raise ValueError(f"in_({field!r}, …) needs at least one value")
    array = "[" + ",".join(_json_value(v) for v in values) + "]"
    prop = string_literal(name(field))
    return f"Microsoft.Dynamics.CRM.In(PropertyName={prop},PropertyValues={array})"


def encode_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{quote(k, safe='$@')}={quote(v, safe=_QUERY_SAFE)}" for k, v in params.items()
    )


def in_chunks(
    field: str,
    values: Sequence[Scalar],
    *,
    url_prefix: str = "",
    other_params: Mapping[str, str] | None = None,
    max_url_length: int = DEFAULT_MAX_URL_LENGTH,
) -> Iterator[str]:
    """Split `values` into `In()` filters whose full encoded URL stays under `max_url_length`.

    `url_prefix` is the URL before `?` and `other_params` the rest of the query, so the
    budget is measured on the URL that will actually be sent.
    """
    extra = dict(other_params or {})
    base_len = len(url_prefix) + 1 + (len(encode_query(extra)) + 1 if extra else 0)
    one = in_(field, ["x"])
    overhead = (
        base_len
        + len("$filter=")
        + len(quote(one, safe=_QUERY_SAFE))
        - len(quote(_json_value("x"), safe=_QUERY_SAFE))
    )
    start = 0
    while start < len(values):
        size = overhead
        end = start
        while end < len(values):
            piece = len(quote(_json_value(values[end]), safe=_QUERY_SAFE)) + (
                1 if end > start else 0
            )
            if size + piece > max_url_length:
                break
            size += piece
            end += 1
        if end == start:
            raise ValueError(
                f"value {values[start]!r} for {field!r} alone exceeds "
                f"max_url_length={max_url_length}: raise the limit or shorten the value"
            )
        yield in_(field, values[start:end])
        start = end


def select(fields: Iterable[str]) -> str:
    names = [name(f) for f in fields]
    if not names:
        raise ValueError("select() needs at least one column")
    return ",".join(names)


_select = select


def orderby(*fields: str | tuple[str, bool]) -> str:
    """`orderby("name", ("revenue", True))` → `name asc,revenue desc` (True = descending)."""
    parts = []
    for item in fields:
        field, descending = (item, False) if isinstance(item, str) else item
        parts.append(f"{name(field)} {'desc' if descending else 'asc'}")
    return ",".join(parts)


def expand(
    navigation: str,
    *,
    select: Iterable[str] | None = None,
    filter: str | None = None,
    orderby: str | None = None,
    top: int | None = None,
) -> str:
    """One `$expand` item: `primarycontactid($select=fullname;$filter=…)`."""
    options = []
    if select is not None:
        options.append(f"$select={','.join(name(f) for f in select)}")
    if filter:
        options.append(f"$filter={filter}")
    if orderby:
        options.append(f"$orderby={orderby}")
    if top is not None:
        options.append(f"$top={int(top)}")
    inner = f"({';'.join(options)})" if options else ""
    return f"{name(navigation)}{inner}"


def query(
    *,
    select: Iterable[str] | None = None,
    filter: str | None = None,
    orderby: str | None = None,
    expand: Iterable[str] | None = None,
    top: int | None = None,
    count: bool = False,
) -> dict[str, str]:
    """The query parameters for a collection read, in a stable order."""
    params: dict[str, str] = {}
    if select is not None:
        params["$select"] = _select(select)
    if filter:
        params["$filter"] = filter
    if orderby:
        params["$orderby"] = orderby
    if expand:
        params["$expand"] = ",".join(expand)
    if top is not None:
        params["$top"] = str(int(top))
    if count:
        params["$count"] = "true"
    return params


def key_segment(key: uuid.UUID | str | Mapping[str, Scalar]) -> str:
    """`(<guid>)` for a primary key, `(accountnumber='A''1',x=2)` for an alternate key."""
    if isinstance(key, uuid.UUID):
        return f"({key})"
    if isinstance(key, str):
        try:
            return f"({uuid.UUID(key)})"
        except ValueError as exc:
            raise ValueError(
                f"record id {key!r} is not a GUID: pass a uuid.UUID, or a mapping for an "
                "alternate key"
            ) from exc
    if not key:
        raise ValueError("alternate key needs at least one column")
    return "(" + ",".join(f"{name(k)}={literal(v)}" for k, v in key.items()) + ")"
