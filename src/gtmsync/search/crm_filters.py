"""Dynamics (CRM) filters of Advanced Search, over the daily snapshot.

Same grammar as the standard filters, `crm_<field>__<op>=value`, with two operators:
`in` keeps records that have a matched Dynamics record with one of the values, `exclude`
removes records that have one. The value `all` stands for every value: `crm_owner__in=all`
keeps every record that exists in Dynamics ("include all owners"), `crm_owner__exclude=all`
removes every one of them ("exclude all"). Ranges (`gte`/`lte`) apply to opportunity amount
and close date and combine into one "has an opportunity with ..." condition.

Every condition is an EXISTS / NOT EXISTS probe into a snapshot table on
`(org_id, company_id|contact_id, ...)`, added to the standard query through `extra_where`.
Filter groups the admin switched off are refused by name, as are more than 10 owners.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, not_, select
from sqlalchemy.orm import Session

from gtmsync.kit.errors import UserError
from gtmsync.platform.models import Company, Contact
from gtmsync.search import settings as filter_settings
from gtmsync.search.filters import SearchObject
from gtmsync.search.models import (
    SearchSnapshot,
    SnapAccount,
    SnapContact,
    SnapOpportunity,
    SnapOwner,
    SnapStat,
)

PREFIX = "crm_"
MAX_OWNERS = 10
ALL = "all"
OPP_STATUSES = ("open", "won", "lost")
CrmCondValues = tuple[tuple[Any, ...], str]


@dataclass(frozen=True)
class CrmField:
    key: str
    label: str
    group: str  # account | opportunity | contact | lead
    ops: tuple[str, ...]
    kind: str = "text"  # text | owner | status | amount | date | flag


_COMPANY_FIELDS = (
    CrmField("owner", "Dynamics account owner", "account", ("in", "exclude"), "owner"),
    CrmField("account_type", "Dynamics account type", "account", ("in", "exclude")),
    CrmField("opp_stage", "Opportunity stage", "opportunity", ("in", "exclude")),
    CrmField("opp_status", "Opportunity status", "opportunity", ("in", "exclude"), "status"),
    CrmField("opp_amount", "Opportunity amount", "opportunity", ("gte", "lte"), "amount"),
    CrmField("opp_close", "Opportunity close date", "opportunity", ("gte", "lte"), "date"),
)
_CONTACT_FIELDS = (
    CrmField("owner", "Dynamics contact owner", "contact", ("in", "exclude"), "owner"),
    CrmField("optout", "Opted out of email (contact)", "contact", ("exclude",), "flag"),
    CrmField("lead_owner", "Dynamics lead owner", "lead", ("in", "exclude"), "owner"),
    CrmField("lead_status", "Lead status", "lead", ("in", "exclude")),
    CrmField("lead_optout", "Opted out of email (lead)", "lead", ("exclude",), "flag"),
)
FIELDS: dict[SearchObject, dict[str, CrmField]] = {
    SearchObject.COMPANIES: {f.key: f for f in _COMPANY_FIELDS},
    SearchObject.CONTACTS: {f.key: f for f in _CONTACT_FIELDS},
}
OP_WORDS = {"in": "is one of", "exclude": "is not", "gte": "is at least", "lte": "is at most"}


@dataclass(frozen=True)
class CrmCondition:
    field: CrmField
    op: str
    values: tuple[Any, ...]
    shown: str
    custom_attribute: str | None = None

    @property
    def param(self) -> str:
        return f"{PREFIX}{self.field.key}__{self.op}"

    @property
    def is_all(self) -> bool:
        return self.values == (ALL,)

    def sentence(self) -> str:
        if self.field.kind == "flag":
            return f"Exclude: {self.field.label}"
        if self.is_all:
            verb = "Include" if self.op == "in" else "Exclude"
            return f"{verb} every record in Dynamics ({self.field.label}: all)"
        return f"{self.field.label} {OP_WORDS[self.op]} {self.shown}"


@dataclass
class CrmFilters:
    org_id: uuid.UUID
    obj: SearchObject
    conditions: list[CrmCondition] = field(default_factory=list)

    def sentences(self) -> list[str]:
        return [c.sentence() for c in self.conditions]

    def params(self) -> list[tuple[str, str]]:
        out = []
        for c in self.conditions:
            out.append((c.param, ",".join(str(v) for v in c.values)))
        return out

    def where(self) -> list[ColumnElement[bool]]:
        if self.obj == SearchObject.COMPANIES:
            return _company_clauses(self.org_id, self.conditions)
        return _contact_clauses(self.org_id, self.conditions)

    def fraction(self, session: Session) -> float | None:
        """The share of platform records these filters keep, from the snapshot's statistics.

        Each condition's share is the number of platform records with a matching Dynamics
        record (`SnapStat`, per value, computed by the daily snapshot) over the platform's
        records at snapshot time; conditions are taken as independent of each other and of
        the standard filters, so the result is an estimate. None when a condition has no
        statistics (amount or date ranges, custom fields) or there is no snapshot.
        """
        kinds = [_stat_kind(c) for c in self.conditions]
        if not self.conditions or any(k is None for k in kinds):
            return None
        taken = session.get(SearchSnapshot, self.org_id)
        if taken is None:
            return None
        records = (
            taken.platform_companies
            if self.obj == SearchObject.COMPANIES
            else taken.platform_contacts
        )
        if not records:
            return None
        wanted = {k for k in kinds if k is not None}
        stats: dict[tuple[str, str], int] = {
            (kind, value): n
            for kind, value, n in session.execute(
                select(SnapStat.kind, SnapStat.value, SnapStat.records).where(
                    SnapStat.org_id == self.org_id,
                    SnapStat.kind.in_(wanted | {_any_kind(k) for k in wanted}),
                )
            )
        }
        share = 1.0
        for cond, kind in zip(self.conditions, kinds, strict=True):
            assert kind is not None
            share_any = min(1.0, stats.get((_any_kind(kind), ""), 0) / records)
            if cond.field.kind == "flag" or cond.is_all:
                hit = min(1.0, stats.get((kind, ""), 0) / records)
            else:
                miss = 1.0
                for value in cond.values:
                    miss *= 1.0 - min(1.0, stats.get((kind, str(value)), 0) / records)
                hit = min(share_any, 1.0 - miss)
            share *= hit if cond.op == "in" else 1.0 - hit
        return share


def _stat_kind(cond: CrmCondition) -> str | None:
    """The `SnapStat.kind` holding this condition's counts (see `snapshot.stat_queries`)."""
    if cond.custom_attribute is not None or cond.op not in ("in", "exclude"):
        return None
    key, group = cond.field.key, cond.field.group
    if key in {"owner", "lead_owner"}:
        kind = f"{group}_owner"
    elif key == "optout":
        kind = "contact_optout"
    elif key in ("account_type", "opp_stage", "opp_status", "lead_status", "lead_optout"):
        kind = key
    else:
        return None
    if cond.is_all and cond.field.kind != "flag":
        return _any_kind(kind)
    return kind


def _any_kind(kind: str) -> str:
    """`account_owner` -> `account_any`: records with any Dynamics record of that table."""
    return kind.split("_", 1)[0] + "_any"


def _account_probe(org_id: uuid.UUID, *extra: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists(
        select(SnapAccount.id).where(
            SnapAccount.org_id == org_id, SnapAccount.company_id == Company.id, *extra
        )
    )


def _opp_probe(org_id: uuid.UUID, *extra: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists(
        select(SnapOpportunity.id).where(
            SnapOpportunity.org_id == org_id, SnapOpportunity.company_id == Company.id, *extra
        )
    )


def _person_probe(
    org_id: uuid.UUID, source: str, *extra: ColumnElement[bool]
) -> ColumnElement[bool]:
    return exists(
        select(SnapContact.id).where(
            SnapContact.org_id == org_id,
            SnapContact.contact_id == Contact.id,
            SnapContact.source_table == source,
            *extra,
        )
    )


def _column_test(column: Any, cond: CrmCondition) -> list[ColumnElement[bool]]:
    return [] if cond.is_all else [column.in_(list(cond.values))]


def _company_clauses(org_id: uuid.UUID, conditions: Sequence[CrmCondition]) -> list[Any]:
    clauses: list[Any] = []
    opp_ranges: list[ColumnElement[bool]] = []
    for cond in conditions:
        key = cond.field.key
        if cond.field.group == "account":
            column: Any
            if cond.custom_attribute is not None:
                column = SnapAccount.custom[cond.custom_attribute].as_string()
            else:
                column = SnapAccount.owner_id if key == "owner" else SnapAccount.account_type
            probe = _account_probe(org_id, *_column_test(column, cond))
            clauses.append(probe if cond.op == "in" else not_(probe))
        elif cond.op in ("gte", "lte"):
            column = SnapOpportunity.amount if key == "opp_amount" else SnapOpportunity.close_date
            value = cond.values[0]
            opp_ranges.append(column >= value if cond.op == "gte" else column <= value)
        else:
            column = SnapOpportunity.stage if key == "opp_stage" else SnapOpportunity.status
            probe = _opp_probe(org_id, *_column_test(column, cond))
            clauses.append(probe if cond.op == "in" else not_(probe))
    if opp_ranges:
        clauses.append(_opp_probe(org_id, and_(*opp_ranges)))
    return clauses


def _contact_clauses(org_id: uuid.UUID, conditions: Sequence[CrmCondition]) -> list[Any]:
    clauses: list[Any] = []
    for cond in conditions:
        source = "lead" if cond.field.group == "lead" else "contact"
        column: Any
        if cond.field.kind == "flag":
            clauses.append(not_(_person_probe(org_id, source, SnapContact.do_not_email.is_(True))))
            continue
        if cond.custom_attribute is not None:
            column = SnapContact.custom[cond.custom_attribute].as_string()
        elif cond.field.kind == "owner":
            column = SnapContact.owner_id
        else:
            column = SnapContact.lead_status
        probe = _person_probe(org_id, source, *_column_test(column, cond))
        clauses.append(probe if cond.op == "in" else not_(probe))
    return clauses


def _values(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _owner_values(raw: str, param: str, owner_names: dict[uuid.UUID, str]) -> CrmCondValues:
    values = _values(raw)
    if [v.lower() for v in values] == [ALL]:
        return (ALL,), "all owners"
    if len(values) > MAX_OWNERS:
        raise UserError(
            f"{param} lists {len(values)} owners; at most {MAX_OWNERS} can be picked.",
            field=param,
            fix=f"Pick up to {MAX_OWNERS} owners, or use 'all' for every owner.",
        )
    owners: list[uuid.UUID] = []
    for v in values:
        try:
            owners.append(uuid.UUID(v))
        except ValueError:
            raise UserError(
                f"{param}: {v!r} is not a Dynamics user id.",
                field=param,
                fix="Pick owners from the list (or use 'all').",
            ) from None
    shown = ", ".join(owner_names.get(o, str(o)) for o in owners)
    return tuple(owners), shown


def _scalar(spec: CrmField, raw: str, param: str) -> Any:
    text = raw.strip()
    if spec.kind == "amount":
        try:
            amount = Decimal(text.replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise UserError(
                f"{param} must be a number (got {raw!r}).", field=param, fix="e.g. 50000."
            ) from None
        if amount < 0:
            raise UserError(f"{param} cannot be negative.", field=param, fix="Use 0 or more.")
        return amount
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{param} must be a date like 2026-12-31 (got {raw!r}).",
            field=param,
            fix="Use YYYY-MM-DD.",
        ) from None


def parse(
    session: Session,
    org_id: uuid.UUID,
    obj: SearchObject,
    params: Iterable[tuple[str, str]],
    *,
    owner_names: dict[uuid.UUID, str] | None = None,
) -> CrmFilters:
    """Read the `crm_*` pairs (others are ignored); refuse unknown or switched-off filters."""
    config = filter_settings.get(session, org_id)
    names = owner_names if owner_names is not None else owners_by_id(session, org_id)
    parsed = CrmFilters(org_id, obj)
    fields = FIELDS[obj]
    for param, raw_value in params:
        if not param.startswith(PREFIX) or raw_value is None or str(raw_value).strip() == "":
            continue
        key, sep, op = param.removeprefix(PREFIX).partition("__")
        custom_attribute: str | None = None
        spec = fields.get(key)
        if spec is None and key.startswith("custom_"):
            spec, custom_attribute = _custom_field(config, obj, key, param)
        if spec is None:
            raise UserError(
                f"Unknown Dynamics filter {key!r} for {obj.value}.",
                field=param,
                fix=f"Use one of: {', '.join(f'{PREFIX}{k}' for k in fields)}.",
            )
        if not config.enabled(spec.group):
            raise UserError(
                f"{spec.label} filters are switched off for your organization.",
                field=param,
                fix=f"An admin can switch {spec.group} filters on in {filter_settings.PAGE}.",
            )
        if not sep or op not in spec.ops:
            raise UserError(
                f"{PREFIX}{key} does not support {op or '(no operator)'!r}.",
                field=param,
                fix=f"Use {', '.join(f'{PREFIX}{key}__{o}' for o in spec.ops)}.",
            )
        raw = str(raw_value)
        if spec.kind == "owner":
            values, shown = _owner_values(raw, param, names)
        elif spec.kind == "flag":
            if raw.strip().lower() not in {"1", "true", "yes", "on"}:
                continue
            values, shown = (True,), "yes"
        elif spec.kind in ("amount", "date"):
            value = _scalar(spec, raw, param)
            values, shown = (value,), str(value)
        else:
            items = _values(raw)
            if [v.lower() for v in items] == [ALL]:
                values, shown = (ALL,), "all"
            else:
                if spec.kind == "status":
                    bad = [v for v in items if v.lower() not in OPP_STATUSES]
                    if bad:
                        raise UserError(
                            f"{param}: {bad[0]!r} is not an opportunity status.",
                            field=param,
                            fix="Use open, won or lost.",
                        )
                    items = [v.lower() for v in items]
                if len(items) > 50:
                    raise UserError(
                        f"{param} lists too many values.", field=param, fix="Use 50 or fewer."
                    )
                values, shown = tuple(items), ", ".join(items)
        parsed.conditions.append(CrmCondition(spec, op, values, shown, custom_attribute))
    return parsed


def _custom_field(
    config: filter_settings.FilterSettingsView, obj: SearchObject, key: str, param: str
) -> tuple[CrmField | None, str | None]:
    attribute = key.removeprefix("custom_")
    objects = ("account",) if obj == SearchObject.COMPANIES else ("contact", "lead")
    for table in objects:
        for custom in config.custom_fields.get(table, []):
            if custom.attribute == attribute:
                spec = CrmField(key, f"{custom.label} ({table})", table, ("in", "exclude"))
                return spec, attribute
    raise UserError(
        f"{attribute!r} is not a custom field filter of {obj.value}.",
        field=param,
        fix=f"An admin adds custom field filters in {filter_settings.PAGE}.",
    )


def owners_by_id(session: Session, org_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Owners seen in the snapshot (accounts, contacts and leads), for pickers and sentences."""
    query = select(SnapOwner.owner_id, SnapOwner.name).where(SnapOwner.org_id == org_id)
    out = {owner_id: name or str(owner_id) for owner_id, name in session.execute(query)}
    return dict(sorted(out.items(), key=lambda kv: kv[1].lower()))


def facet(session: Session, org_id: uuid.UUID, name: str, *, limit: int = 200) -> list[str]:
    """Distinct account types, stages and lead statuses for the form's pickers."""
    columns: dict[str, Any] = {
        "account_type": (SnapAccount.account_type, SnapAccount.org_id),
        "opp_stage": (SnapOpportunity.stage, SnapOpportunity.org_id),
        "lead_status": (SnapContact.lead_status, SnapContact.org_id),
    }
    column, org_column = columns[name]
    query = (
        select(column)
        .where(org_column == org_id, column.is_not(None))
        .distinct()
        .order_by(column)
        .limit(limit)
    )
    return [str(v) for v in session.scalars(query)]
