"""Portal pages of the Dynamics import: Import Mapping, Import Rules, Sync History (admins)
and My Target Accounts (every user).

Each form posts one small change; the page reads the whole mapping or rule set, applies the
change and saves it through the service, which validates it and schedules the backfill the
change needs. A refused change comes back as a flash message with the service's fix.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel
from starlette.responses import Response

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.chart import usage_svg
from gtmsync.crm_import.schemas import (
    OPERATOR_LABELS,
    Condition,
    ConditionGroup,
    FieldMap,
    GtmObject,
    ImportSettingsUpdate,
    ObjectRules,
    Operator,
    Source,
)
from gtmsync.kit.errors import GtmsyncError
from gtmsync.web.api.imports import start_sync
from gtmsync.web.deps import AdminUser, CurrentUser, SessionDep, SettingsDep, require_admin
from gtmsync.web.portal.rendering import redirect, render

router = APIRouter()
admin_router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

MAPPING_URL = "/admin/integrations/dynamics/import-mapping"
RULES_URL = "/admin/integrations/dynamics/import-rules"
HISTORY_URL = "/admin/integrations/dynamics/sync-history"


class FieldChangeForm(BaseModel):
    source_key: str
    index: int
    field: str = ""


class AddFieldForm(BaseModel):
    source_key: str
    attribute: str
    field: str


class CustomFieldForm(BaseModel):
    object: GtmObject
    name: str


class ObjectSourceForm(BaseModel):
    table: str
    object: GtmObject


class FieldSourceForm(BaseModel):
    table: str
    record_id_attribute: str
    related_id_attribute: str
    role_name: str = ""


class SettingsForm(BaseModel):
    enabled: str | None = None
    daily_budget: int
    page_size: int


class RuleForm(BaseModel):
    source_key: str
    group: str = "new"
    match: str = "any"
    group_match: str = "all"
    attribute: str
    operator: Operator
    value: str = ""


class ClearRulesForm(BaseModel):
    source_key: str


def _refused(request: Request, url: str, error: GtmsyncError) -> Response:
    return redirect(
        request, url, flash=f"Not saved: {error.message}{' ' + error.fix if error.fix else ''}"
    )


# -- Import Mapping ---------------------------------------------------------------------------


@admin_router.get("/integrations/dynamics/import-mapping")
def mapping_page(
    request: Request, db: SessionDep, admin: AdminUser, settings: SettingsDep
) -> Response:
    try:
        doc = import_service.get_mapping(db, admin.org_id, settings=settings)
        schemas = {
            s.table: import_service.schema_for(db, admin.org_id, s.table, settings=settings)
            for s in doc.sources
        }
        custom_tables = import_service.custom_tables(db, admin.org_id, settings=settings)
    except GtmsyncError as error:
        return render(
            request, "imports/mapping.html", {"error": error, "doc": None}, status_code=200
        )
    sources = []
    for source in doc.sources:
        schema = schemas[source.table]
        mapped = {f.attribute for f in source.fields}
        options = schema.options()
        sources.append(
            {
                "source": source,
                "labels": {o.name: o.label for o in options},
                "fields": import_service.gtm_field_options(
                    source.object, doc.custom_fields.get(source.object.value, [])
                )
                if source.object != GtmObject.ROLE
                else [],
                "unmapped": [o for o in options if o.name not in mapped],
                "readable": [o for o in options if o.readable],
            }
        )
    context = {
        "error": None,
        "doc": doc,
        "sources": sources,
        "objects": [o for o in GtmObject if o != GtmObject.ROLE],
        "custom_tables": custom_tables,
        "tables": sorted(schemas),
        "settings_view": import_service.get_settings_view(db, admin.org_id),
    }
    return render(request, "imports/mapping.html", context)


@admin_router.post("/imports/mapping/field")
def change_field(
    request: Request,
    form: Annotated[FieldChangeForm, Form()],
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
) -> Response:
    try:
        doc = import_service.get_mapping(db, admin.org_id, settings=settings)
        source = doc.source(form.source_key)
        if source is None or not 0 <= form.index < len(source.fields):
            return redirect(request, MAPPING_URL, flash="That mapping row no longer exists.")
        if form.field:
            source.fields[form.index].field = form.field
        else:
            del source.fields[form.index]
        import_service.save_mapping(db, admin.org_id, doc, actor=admin, settings=settings)
    except GtmsyncError as error:
        return _refused(request, MAPPING_URL, error)
    return redirect(
        request, MAPPING_URL, flash="Mapping saved; a backfill of that table is scheduled."
    )


@admin_router.post("/imports/mapping/add-field")
def add_field(
    request: Request,
    form: Annotated[AddFieldForm, Form()],
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
) -> Response:
    try:
        doc = import_service.get_mapping(db, admin.org_id, settings=settings)
        source = doc.source(form.source_key)
        if source is None:
            return redirect(request, MAPPING_URL, flash="That source no longer exists.")
        source.fields.append(FieldMap(attribute=form.attribute, field=form.field))
        import_service.save_mapping(db, admin.org_id, doc, actor=admin, settings=settings)
    except GtmsyncError as error:
        return _refused(request, MAPPING_URL, error)
    return redirect(request, MAPPING_URL, flash=f"{form.attribute} is now imported.")


@admin_router.post("/imports/custom-field")
def custom_field(
    request: Request,
    form: Annotated[CustomFieldForm, Form()],
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
) -> Response:
    try:
        import_service.create_custom_field(
            db, admin.org_id, form.object, form.name, actor=admin, settings=settings
        )
    except GtmsyncError as error:
        return _refused(request, MAPPING_URL, error)
    return redirect(request, MAPPING_URL, flash=f"Custom field {form.name} created.")


@admin_router.post("/imports/sources/object")
def add_object_source(
    request: Request,
    form: Annotated[ObjectSourceForm, Form()],
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
) -> Response:
    try:
        doc = import_service.get_mapping(db, admin.org_id, settings=settings)
        schema = import_service.schema_for(db, admin.org_id, form.table, settings=settings)
        primary_name = next(
            (n for n in ("name", f"{form.table.split('_', 1)[0]}_name") if schema.readable(n)),
            None,
        )
        fields = [FieldMap(attribute=primary_name, field="name")] if primary_name else []
        if form.object not in (GtmObject.ACCOUNT, GtmObject.OPPORTUNITY, GtmObject.PRODUCT):
            fields = []
        doc.sources.append(Source(table=form.table, object=form.object, fields=fields))
        import_service.save_mapping(db, admin.org_id, doc, actor=admin, settings=settings)
    except GtmsyncError as error:
        return _refused(request, MAPPING_URL, error)
    return redirect(
        request, MAPPING_URL, flash=f"{form.table} now feeds GTM {form.object.value} records."
    )


@admin_router.post("/imports/sources/field")
def add_field_source(
    request: Request,
    form: Annotated[FieldSourceForm, Form()],
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
) -> Response:
    try:
        doc = import_service.get_mapping(db, admin.org_id, settings=settings)
        doc.sources.append(
            Source(
                table=form.table,
                object=GtmObject.ROLE,
                record_id_attribute=form.record_id_attribute,
                related_id_attribute=form.related_id_attribute,
                role_name=form.role_name.strip() or form.related_id_attribute,
            )
        )
        import_service.save_mapping(db, admin.org_id, doc, actor=admin, settings=settings)
    except GtmsyncError as error:
        return _refused(request, MAPPING_URL, error)
    return redirect(request, MAPPING_URL, flash="Role records source added.")


@admin_router.post("/imports/settings")
def save_settings(
    request: Request, form: Annotated[SettingsForm, Form()], db: SessionDep, admin: AdminUser
) -> Response:
    try:
        import_service.update_settings(
            db,
            admin.org_id,
            ImportSettingsUpdate(
                enabled=form.enabled == "on",
                daily_budget=form.daily_budget,
                page_size=form.page_size,
            ),
            actor=admin,
        )
    except (GtmsyncError, ValueError) as error:
        message = error.message if isinstance(error, GtmsyncError) else str(error)
        return redirect(request, MAPPING_URL, flash=f"Not saved: {message}")
    return redirect(request, MAPPING_URL, flash="Import settings saved.")


# -- Import Rules ---------------------------------------------------------------------------


@admin_router.get("/integrations/dynamics/import-rules")
def rules_page(
    request: Request, db: SessionDep, admin: AdminUser, settings: SettingsDep
) -> Response:
    doc = import_service.get_mapping(db, admin.org_id, settings=settings)
    ruleset = import_service.get_rules(db, admin.org_id)
    attributes = {
        s.key: [
            o
            for o in import_service.schema_for(
                db, admin.org_id, s.table, settings=settings
            ).options()
            if o.readable
        ]
        for s in doc.sources
        if s.object != GtmObject.ROLE
    }
    context = {
        "sources": [s for s in doc.sources if s.object != GtmObject.ROLE],
        "ruleset": ruleset,
        "attributes": attributes,
        "operators": OPERATOR_LABELS,
    }
    return render(request, "imports/rules.html", context)


@admin_router.post("/imports/rules/add")
def add_rule(
    request: Request,
    form: Annotated[RuleForm, Form()],
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
) -> Response:
    ruleset = import_service.get_rules(db, admin.org_id)
    rules = ruleset.for_source(form.source_key)
    if rules is None:
        rules = ObjectRules(source_key=form.source_key, match=form.match)
        ruleset.rules.append(rules)
    condition = Condition(attribute=form.attribute, operator=form.operator, value=form.value)
    if form.group.isdigit() and int(form.group) < len(rules.groups):
        rules.groups[int(form.group)].conditions.append(condition)
    else:
        rules.groups.append(ConditionGroup(match=form.group_match, conditions=[condition]))
    try:
        import_service.save_rules(db, admin.org_id, ruleset, actor=admin, settings=settings)
    except GtmsyncError as error:
        return _refused(request, RULES_URL, error)
    return redirect(
        request, RULES_URL, flash="Import rule saved; a backfill of that table is scheduled."
    )


@admin_router.post("/imports/rules/clear")
def clear_rules(
    request: Request,
    form: Annotated[ClearRulesForm, Form()],
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
) -> Response:
    ruleset = import_service.get_rules(db, admin.org_id)
    ruleset.rules = [r for r in ruleset.rules if r.source_key != form.source_key]
    try:
        import_service.save_rules(db, admin.org_id, ruleset, actor=admin, settings=settings)
    except GtmsyncError as error:
        return _refused(request, RULES_URL, error)
    return redirect(request, RULES_URL, flash="Import rules removed.")


# -- Sync History ---------------------------------------------------------------------------


@admin_router.get("/integrations/dynamics/sync-history")
def history_page(request: Request, db: SessionDep, admin: AdminUser) -> Response:
    usage = import_service.usage(db, admin.org_id)
    context = {
        "runs": import_service.list_runs(db, admin.org_id),
        "usage": usage,
        "chart": usage_svg(usage),
        "status": import_service.status(db, admin.org_id),
    }
    return render(request, "imports/history.html", context)


@admin_router.post("/imports/sync-now")
def sync_now(request: Request, db: SessionDep, admin: AdminUser, settings: SettingsDep) -> Response:
    try:
        import_service.sync_now(db, admin.org_id, actor=admin, settings=settings)
        runs = start_sync(db, admin.org_id, settings)
    except GtmsyncError as error:
        return _refused(request, HISTORY_URL, error)
    message = (
        f"Sync Now finished {len(runs)} table(s)."
        if runs
        else "Sync Now queued: a full backfill of every table starts within a minute."
    )
    return redirect(request, HISTORY_URL, flash=message)


# -- My Target Accounts -----------------------------------------------------------------------


@router.get("/my-target-accounts")
def my_target_accounts(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    accounts = import_service.my_target_accounts(db, user.org_id, user.id)
    return render(request, "imports/target_accounts.html", {"accounts": accounts})
