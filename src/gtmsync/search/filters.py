"""Advanced Search filters as a declarative table (Datasette's `filters.py` shape).

One table drives three things: the API grammar (`?field__op=value`), the portal's filter form,
and the "what am I filtering" sentence. Each entry says which column it reads and which
operators it allows; every value reaches SQL as a bound parameter, never as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from gtmsync.kit.errors import UserError
from gtmsync.platform.models import Company, Contact, IntentSignal

MAX_VALUES = 50  # "in" lists: enough for any picker, small enough to keep plans sane


class SearchObject(StrEnum):
    COMPANIES = "companies"
    CONTACTS = "contacts"


class ValueType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"


@dataclass(frozen=True)
class Operator:
    key: str
    label: str
    sentence: str  # "{label} {sentence} {value}"
    many: bool = False  # takes a comma-separated list


OPERATORS: dict[str, Operator] = {
    op.key: op
    for op in (
        Operator("exact", "is", "is"),
        Operator("contains", "contains", "contains"),
        Operator("startswith", "starts with", "starts with"),
        Operator("in", "is one of", "is one of", many=True),
        Operator("gte", "at least", "is at least"),
        Operator("lte", "at most", "is at most"),
    )
}

ColumnRef = InstrumentedAttribute[Any]
TextColumn = ColumnElement[str]
ClauseFactory = Callable[[str, Any], ColumnElement[bool]]


def _text_clause(column: ColumnRef, *, lower: bool) -> ClauseFactory:
    def build(op: str, value: Any) -> ColumnElement[bool]:
        target = cast(TextColumn, column if lower else func.lower(column))
        if op == "in":
            return target.in_([str(v).lower() for v in value])
        text = str(value).lower()
        if op == "contains":
            return target.contains(text, autoescape=True)
        if op == "startswith":
            return target.startswith(text, autoescape=True)
        return target == text

    return build


def _number_clause(column: ColumnRef) -> ClauseFactory:
    def build(op: str, value: Any) -> ColumnElement[bool]:
        target = cast(ColumnElement[int], column)
        if op == "in":
            return target.in_([int(v) for v in value])
        number = int(value)
        if op == "gte":
            return target >= number
        if op == "lte":
            return target <= number
        return target == number

    return build


def _company_of_contact(inner: ClauseFactory) -> ClauseFactory:
    """A company filter applied to contacts: the contact's company must match."""

    def build(op: str, value: Any) -> ColumnElement[bool]:
        return exists(select(Company.id).where(Company.id == Contact.company_id, inner(op, value)))

    return build


def _intent_topic(company_id: ColumnRef) -> ClauseFactory:
    def build(op: str, value: Any) -> ColumnElement[bool]:
        topics = value if op == "in" else [value]
        return exists(
            select(IntentSignal.id).where(
                IntentSignal.company_id == company_id, IntentSignal.topic.in_(topics)
            )
        )

    return build


@dataclass(frozen=True)
class FilterField:
    key: str
    label: str
    type: ValueType
    ops: tuple[str, ...]
    clause: ClauseFactory
    hint: str = ""
    # A company column that leads an index, with few distinct values (industry, country):
    # search turns `lower(column) IN (...)`, which no index serves, into `column IN (the
    # stored spellings)` found by a loose index scan (`service.stored_values`).
    indexed: ColumnRef | None = None


def _name_clause(op: str, value: Any) -> ColumnElement[bool]:
    text = str(value).lower()
    first, last = func.lower(Contact.first_name), func.lower(Contact.last_name)
    full = func.lower(Contact.first_name + " " + Contact.last_name)
    if op == "startswith":
        return or_(first.startswith(text, autoescape=True), last.startswith(text, autoescape=True))
    if op == "exact":
        return full == text
    return full.contains(text, autoescape=True)


_COMPANY_FIELDS: tuple[FilterField, ...] = (
    FilterField(
        "name",
        "Company name",
        ValueType.TEXT,
        ("contains", "startswith", "exact"),
        _text_clause(Company.name_lower, lower=True),
    ),
    FilterField(
        "industry",
        "Industry",
        ValueType.TEXT,
        ("exact", "in"),
        _text_clause(Company.industry, lower=False),
        indexed=Company.industry,
    ),
    FilterField(
        "employees",
        "Employees",
        ValueType.INTEGER,
        ("gte", "lte"),
        _number_clause(Company.employee_count),
    ),
    FilterField(
        "revenue",
        "Revenue (USD)",
        ValueType.INTEGER,
        ("gte", "lte"),
        _number_clause(Company.revenue),
    ),
    FilterField(
        "country",
        "Country",
        ValueType.TEXT,
        ("exact", "in"),
        _text_clause(Company.country, lower=False),
        indexed=Company.country,
    ),
    FilterField(
        "state",
        "State / region",
        ValueType.TEXT,
        ("exact", "in"),
        _text_clause(Company.state, lower=False),
    ),
    FilterField(
        "city", "City", ValueType.TEXT, ("exact", "in"), _text_clause(Company.city, lower=False)
    ),
    FilterField(
        "intent_topic",
        "Intent topic",
        ValueType.TEXT,
        ("exact", "in"),
        _intent_topic(Company.id),
        hint="Companies showing intent on the topic; combine with a minimum score.",
    ),
)

_CONTACT_ONLY: tuple[FilterField, ...] = (
    FilterField(
        "name", "Person name", ValueType.TEXT, ("contains", "startswith", "exact"), _name_clause
    ),
    FilterField(
        "job_title",
        "Job title",
        ValueType.TEXT,
        ("contains", "exact"),
        _text_clause(Contact.job_title, lower=False),
    ),
    FilterField(
        "department",
        "Department",
        ValueType.TEXT,
        ("exact", "in"),
        _text_clause(Contact.department, lower=False),
    ),
    FilterField(
        "management_level",
        "Management level",
        ValueType.TEXT,
        ("exact", "in"),
        _text_clause(Contact.management_level, lower=False),
    ),
)


def _as_contact_field(spec: FilterField) -> FilterField:
    return FilterField(
        f"company_{spec.key}",
        spec.label if spec.key != "name" else "Company name",
        spec.type,
        spec.ops,
        _company_of_contact(spec.clause),
        spec.hint,
        spec.indexed,
    )


FIELDS: dict[SearchObject, dict[str, FilterField]] = {
    SearchObject.COMPANIES: {f.key: f for f in _COMPANY_FIELDS},
    SearchObject.CONTACTS: {
        f.key: f for f in (*_CONTACT_ONLY, *(_as_contact_field(f) for f in _COMPANY_FIELDS))
    },
}


@dataclass(frozen=True)
class Condition:
    field: FilterField
    op: Operator
    value: Any

    @property
    def param(self) -> str:
        return f"{self.field.key}__{self.op.key}"

    def raw_value(self) -> str:
        return ",".join(map(str, self.value)) if self.op.many else str(self.value)

    def sentence(self) -> str:
        shown = ", ".join(map(str, self.value)) if self.op.many else str(self.value)
        return f"{self.field.label} {self.op.sentence} {shown}"

    def clause(self, stored: Sequence[str] | None = None) -> ColumnElement[bool]:
        """`stored`: the column's spellings that equal the value(s) ignoring case."""
        if stored is None or self.field.indexed is None:
            return self.field.clause(self.op.key, self.value)
        test: ColumnElement[bool] = self.field.indexed.in_(list(stored))
        if self.field.key.startswith("company_"):  # a company filter on contacts
            return exists(select(Company.id).where(Company.id == Contact.company_id, test))
        return test

    @property
    def lowered(self) -> list[str]:
        """The value(s) as `clause` compares them (lower case)."""
        return [str(v).lower() for v in (self.value if self.op.many else [self.value])]


@dataclass
class ParsedFilters:
    obj: SearchObject
    conditions: list[Condition] = field(default_factory=list)
    min_intent_score: int | None = None

    def where(self, stored: Mapping[str, Sequence[str]] | None = None) -> list[ColumnElement[bool]]:
        """Intent topics and the minimum score combine into one EXISTS (same signal row).

        `stored` maps a condition's `param` to the spellings found in the column (see
        `FilterField.indexed`); conditions without an entry compare `lower(column)`."""
        topics = [c for c in self.conditions if c.field.key.endswith("intent_topic")]
        found = stored or {}
        clauses = [c.clause(found.get(c.param)) for c in self.conditions if c not in topics]
        owner = Contact.company_id if self.obj == SearchObject.CONTACTS else Company.id
        if topics or self.min_intent_score is not None:
            wanted: list[str] = []
            for topic in topics:
                wanted.extend(topic.value if topic.op.many else [topic.value])
            conditions = [IntentSignal.company_id == owner]
            if wanted:
                conditions.append(IntentSignal.topic.in_(wanted))
            if self.min_intent_score is not None:
                conditions.append(IntentSignal.signal_score >= self.min_intent_score)
            clauses.append(exists(select(IntentSignal.id).where(and_(*conditions))))
        return clauses

    def sentences(self) -> list[str]:
        text = [c.sentence() for c in self.conditions]
        if self.min_intent_score is not None:
            text.append(f"Intent score is at least {self.min_intent_score}")
        return text

    def params(self) -> dict[str, str]:
        out = {c.param: c.raw_value() for c in self.conditions}
        if self.min_intent_score is not None:
            out["intent_score__gte"] = str(self.min_intent_score)
        return out


def _parse_value(spec: FilterField, op: Operator, raw: str, param: str) -> Any:
    values: Sequence[str] = (
        [v.strip() for v in raw.split(",") if v.strip()] if op.many else [raw.strip()]
    )
    if not values or not values[0]:
        raise UserError(
            f"{param} has no value.", field=param, fix="Give a value or remove the filter."
        )
    if len(values) > MAX_VALUES:
        raise UserError(
            f"{param} lists {len(values)} values; at most {MAX_VALUES} are allowed.",
            field=param,
            fix="Narrow the list.",
        )
    if spec.type == ValueType.INTEGER:
        try:
            numbers = [int(v.replace("_", "")) for v in values]
        except ValueError:
            raise UserError(
                f"{param} must be a whole number (got {raw!r}).",
                field=param,
                fix="Use digits only, e.g. 500.",
            ) from None
        if any(n < 0 for n in numbers):
            raise UserError(f"{param} cannot be negative.", field=param, fix="Use 0 or more.")
        return numbers if op.many else numbers[0]
    for value in values:
        if len(value) > 200:
            raise UserError(
                f"{param} is longer than 200 characters.", field=param, fix="Shorten it."
            )
    return list(values) if op.many else values[0]


def parse(
    obj: SearchObject, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> ParsedFilters:
    """Read `field__op=value` pairs; unknown fields or operators are refused by name."""
    pairs = params.items() if isinstance(params, Mapping) else params
    parsed = ParsedFilters(obj)
    fields = FIELDS[obj]
    for param, raw in pairs:
        if raw is None or str(raw).strip() == "":
            continue
        if param == "intent_score__gte":
            spec = FilterField(
                "intent_score",
                "Intent score",
                ValueType.INTEGER,
                ("gte",),
                _number_clause(IntentSignal.signal_score),
            )
            score = _parse_value(spec, OPERATORS["gte"], str(raw), param)
            if score > 100:
                raise UserError(
                    "intent_score__gte must be between 0 and 100.", field=param, fix="Use 0-100."
                )
            parsed.min_intent_score = score
            continue
        key, sep, op_key = param.partition("__")
        if not sep:
            op_key = "exact" if key in fields and "exact" in fields[key].ops else ""
        spec_or_none = fields.get(key)
        if spec_or_none is None:
            known = ", ".join(sorted(fields))
            raise UserError(
                f"Unknown filter {key!r} for {obj.value}.", field=param, fix=f"Use one of: {known}."
            )
        if op_key not in spec_or_none.ops:
            raise UserError(
                f"{key} does not support {op_key or '(no operator)'!r}.",
                field=param,
                fix=f"Use {', '.join(f'{key}__{o}' for o in spec_or_none.ops)}.",
            )
        op = OPERATORS[op_key]
        parsed.conditions.append(
            Condition(spec_or_none, op, _parse_value(spec_or_none, op, str(raw), param))
        )
    return parsed
