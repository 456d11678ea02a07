"""Portal pages of the export settings: the Export tab (preferences, account association,
duplicates, platform ID), the Export mapping tabs (Accounts / Contacts / Leads) and the Intent
tab, under Admin Portal › Integrations › Dynamics 365.

The mapping editor works without JavaScript (the portal's CSP allows no inline script): every
button posts the rows as they are on screen with an `action` (add, remove-N, test, save,
refresh) and the page comes back with the edited, unsaved rows, their hierarchy numbers and the
problems on each row. Only `save` stores anything; `test` runs Test Mapping with the rows on
screen. Each handler parses the form, calls one export settings service function and renders.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel
from starlette.responses import Response

from gtmsync.connection.gateway import IntegrationUnavailableError
from gtmsync.export import settings as export_settings
from gtmsync.export.mapping import MappingInvalidError
from gtmsync.export.schemas import (
    MAX_RECORDS_LIMIT,
    DuplicateAction,
    ExportObject,
    ExportSettingsDocument,
    IntentDataPoint,
    IntentMappingRow,
    ManyMatchAccount,
    MappingRow,
    NoMatchAccount,
    OneMatchAccount,
    UpdateMode,
)
from gtmsync.export.trial import TrialResult
from gtmsync.export.validation import Issue, hierarchy_numbers
from gtmsync.kit.errors import GtmsyncError, UserError
from gtmsync.platform.models import User
from gtmsync.settings import Settings
from gtmsync.web.deps import AdminUser, SessionDep, SettingsDep, require_admin
from gtmsync.web.portal.rendering import redirect, render

router = APIRouter()
admin_router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

BASE = "/admin/integrations/dynamics/export"
GENERAL = "/admin/integrations/dynamics"

DUPLICATE_LABELS = {
    DuplicateAction.UPDATE: "Update existing record",
    DuplicateAction.CREATE_DUPLICATE: "Create duplicate record",
    DuplicateAction.SKIP: "Do not export",
}
NO_MATCH_LABELS = {
    NoMatchAccount.MANUAL: "Manually create and associate with a new Account",
    NoMatchAccount.AUTOMATIC: "Automatically create and associate with a new Account",
}
ONE_MATCH_LABELS = {
    OneMatchAccount.MANUAL: "Manually confirm Account association",
    OneMatchAccount.AUTOMATIC: "Allow automatic Account association",
}
MANY_MATCH_LABELS = {
    ManyMatchAccount.MANUAL: "User must manually associate Contacts with Accounts",
    ManyMatchAccount.AUTOMATIC: "Automatically associate Contacts with matched Accounts "
    "according to last modified date",
    ManyMatchAccount.EITHER: "Allow users to manually or automatically associate with Accounts "
    "according to last modified date",
}
MODE_LABELS = {
    UpdateMode.COMPLETE_IF_MISSING: "Complete if missing",
    UpdateMode.OVERWRITE: "Overwrite field",
}


def _tabs() -> list[dict[str, str]]:
    return [
        {"href": GENERAL, "label": "General"},
        {"href": BASE, "label": "Export"},
        *(
            {"href": f"{BASE}/mapping/{obj.value}", "label": f"Export mapping: {obj.label}"}
            for obj in ExportObject
        ),
        {"href": f"{BASE}/intent", "label": "Intent"},
    ]


def _page(
    request: Request,
    template: str,
    db: SessionDep,
    user: User,
    settings: Settings,
    *,
    document: ExportSettingsDocument | None = None,
    error: GtmsyncError | None = None,
    issues: list[Issue] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    try:
        data = export_settings.editor(db, user.org_id, settings=settings, document=document)
    except IntegrationUnavailableError as unavailable:
        # Mapping needs the tenant's live metadata: say what to do instead of an error page.
        return render(
            request,
            "export_settings/unavailable.html",
            {"tabs": _tabs(), "base": BASE, "unavailable": unavailable},
        )
    context: dict[str, Any] = {
        "tabs": _tabs(),
        "data": data,
        "document": data.stored.document,
        "version": data.stored.version,
        "issues": data.issues if issues is None else issues,
        "error": error,
        "objects": list(ExportObject),
        "duplicate_labels": DUPLICATE_LABELS,
        "no_match_labels": NO_MATCH_LABELS,
        "one_match_labels": ONE_MATCH_LABELS,
        "many_match_labels": MANY_MATCH_LABELS,
        "mode_labels": MODE_LABELS,
        "max_limit": MAX_RECORDS_LIMIT,
        "create_anchor": export_settings.CREATE_ANCHOR,
        "base": BASE,
    }
    context.update(extra or {})
    status = 200
    if error is not None:
        status = error.status_code if error.status_code != 422 else 400
    return render(request, template, context, status_code=status)


def _version(raw: str) -> int | None:
    return int(raw) if raw.strip().isdigit() else None


# --- Export tab --------------------------------------------------------------------------


class PreferencesForm(BaseModel):
    version: str = ""
    account_enabled: str = ""
    account_max_records: str = ""
    account_duplicate_default: str = ""
    account_duplicate_options: list[str] = []
    account_platform_id_attribute: str = ""
    contact_enabled: str = ""
    contact_max_records: str = ""
    contact_duplicate_default: str = ""
    contact_duplicate_options: list[str] = []
    contact_platform_id_attribute: str = ""
    lead_enabled: str = ""
    lead_max_records: str = ""
    lead_duplicate_default: str = ""
    lead_duplicate_options: list[str] = []
    lead_platform_id_attribute: str = ""
    no_match: str = NoMatchAccount.MANUAL.value
    one_match: str = OneMatchAccount.MANUAL.value
    many_match: str = ManyMatchAccount.MANUAL.value

    def apply(self, document: ExportSettingsDocument) -> ExportSettingsDocument:
        """The document with this form's preferences; bad values raise a UserError naming
        the field (max records: the allowed range)."""
        data = document.model_dump(mode="json")
        objects: dict[str, Any] = {}
        for obj in ExportObject:
            raw = getattr(self, f"{obj.value}_max_records").strip().replace(",", "")
            field = f"preferences.objects.{obj.value}.max_records"
            try:
                limit = int(raw)
            except ValueError:
                raise UserError(
                    f"{obj.label}: max records per export must be a whole number (got "
                    f"{raw or 'nothing'!r}).",
                    field=field,
                    fix=f"Enter a number from 1 to {MAX_RECORDS_LIMIT:,}.",
                ) from None
            objects[obj.value] = {
                "enabled": bool(getattr(self, f"{obj.value}_enabled")),
                "max_records": limit,
                "duplicate_default": getattr(self, f"{obj.value}_duplicate_default")
                or DuplicateAction.UPDATE.value,
                "duplicate_user_options": getattr(self, f"{obj.value}_duplicate_options"),
                "platform_id_attribute": getattr(self, f"{obj.value}_platform_id_attribute")
                or None,
            }
        data["preferences"] = {
            "objects": objects,
            "association": {
                "no_match": self.no_match,
                "one_match": self.one_match,
                "many_match": self.many_match,
            },
        }
        return export_settings.parse_document(data)


@admin_router.get("/integrations/dynamics/export")
def export_tab(
    request: Request, db: SessionDep, user: AdminUser, settings: SettingsDep
) -> Response:
    return _page(request, "export_settings/export.html", db, user, settings)


@admin_router.post("/integrations/dynamics/export")
def save_export_tab(
    request: Request,
    form: Annotated[PreferencesForm, Form()],
    db: SessionDep,
    user: AdminUser,
    settings: SettingsDep,
) -> Response:
    try:
        document = form.apply(export_settings.get_document(db, user.org_id))
        export_settings.save(
            db,
            user.org_id,
            user,
            document,
            settings=settings,
            expected_version=_version(form.version),
        )
    except MappingInvalidError as invalid:
        db.rollback()
        return _page(
            request,
            "export_settings/export.html",
            db,
            user,
            settings,
            error=invalid,
            issues=invalid.issues,
        )
    except GtmsyncError as error:
        db.rollback()
        return _page(request, "export_settings/export.html", db, user, settings, error=error)
    return redirect(request, BASE, flash="Export preferences saved.")


# --- Export mapping tabs -----------------------------------------------------------------


class MappingRowsForm(BaseModel):
    version: str = ""
    action: str = "refresh"
    source_field: list[str] = []
    target_attribute: list[str] = []
    update_mode: list[str] = []

    def rows(self) -> list[MappingRow]:
        rows: list[MappingRow] = []
        for index, source in enumerate(self.source_field):
            target = self.target_attribute[index] if index < len(self.target_attribute) else ""
            mode = self.update_mode[index] if index < len(self.update_mode) else ""
            rows.append(
                MappingRow(
                    source_field=source.strip(),
                    target_attribute=target.strip(),
                    update_mode=UpdateMode(mode)
                    if mode in {m.value for m in UpdateMode}
                    else UpdateMode.COMPLETE_IF_MISSING,
                )
            )
        return rows


def _object(value: str) -> ExportObject:
    try:
        return ExportObject(value)
    except ValueError:
        raise UserError(
            f"{value!r} is not an export object.",
            field="object",
            fix="Open Accounts, Contacts or Leads.",
        ) from None


def _mapping_page(
    request: Request,
    db: SessionDep,
    user: User,
    settings: Settings,
    obj: ExportObject,
    *,
    document: ExportSettingsDocument | None = None,
    error: GtmsyncError | None = None,
    issues: list[Issue] | None = None,
    trial: TrialResult | None = None,
    dirty: bool = False,
) -> Response:
    current = document or export_settings.get_document(db, user.org_id)
    rows = current.mappings.get(obj, [])
    return _page(
        request,
        "export_settings/mapping.html",
        db,
        user,
        settings,
        document=current,
        error=error,
        issues=issues,
        extra={
            "obj": obj,
            "rows": rows,
            "numbers": hierarchy_numbers(rows),
            "trial": trial,
            "dirty": dirty,
            "row_errors": {e.row: e for e in (trial.row_errors if trial else []) if not e.intent},
        },
    )


@admin_router.get("/integrations/dynamics/export/mapping/{object_name}")
def mapping_tab(
    request: Request, object_name: str, db: SessionDep, user: AdminUser, settings: SettingsDep
) -> Response:
    return _mapping_page(request, db, user, settings, _object(object_name))


@admin_router.post("/integrations/dynamics/export/mapping/{object_name}")
def mapping_action(
    request: Request,
    object_name: str,
    *,
    form: Annotated[MappingRowsForm, Form()],
    db: SessionDep,
    user: AdminUser,
    settings: SettingsDep,
) -> Response:
    obj = _object(object_name)
    rows = form.rows()
    action = form.action
    if action == "add":
        rows.append(MappingRow(source_field="", target_attribute=""))
    elif action.startswith("remove-") and action.removeprefix("remove-").isdigit():
        index = int(action.removeprefix("remove-"))
        if 0 <= index < len(rows):
            del rows[index]
    document = export_settings.get_document(db, user.org_id).model_copy(deep=True)
    document.mappings[obj] = rows
    if action == "test":
        trial = export_settings.run_trial(
            db,
            user.org_id,
            obj,
            rows,
            document.intent_mappings if obj == ExportObject.ACCOUNT else (),
            settings=settings,
        )
        return _mapping_page(
            request, db, user, settings, obj, document=document, trial=trial, dirty=True
        )
    if action == "save":
        try:
            export_settings.save(
                db,
                user.org_id,
                user,
                document,
                settings=settings,
                expected_version=_version(form.version),
            )
        except MappingInvalidError as invalid:
            db.rollback()
            return _mapping_page(
                request,
                db,
                user,
                settings,
                obj,
                document=document,
                error=invalid,
                issues=invalid.issues,
                dirty=True,
            )
        except GtmsyncError as error:
            db.rollback()
            return _mapping_page(
                request, db, user, settings, obj, document=document, error=error, dirty=True
            )
        return redirect(request, f"{BASE}/mapping/{obj.value}", flash=f"{obj.label} mapping saved.")
    return _mapping_page(request, db, user, settings, obj, document=document, dirty=True)


# --- Intent tab ----------------------------------------------------------------------------


class IntentForm(BaseModel):
    version: str = ""
    action: str = "save"
    topic: list[str] = []
    signal_score: list[str] = []
    audience_strength: list[str] = []
    signal_location: list[str] = []
    intent_id: list[str] = []
    issue_date: list[str] = []
    new_topic: str = ""

    def rows(self) -> list[IntentMappingRow]:
        rows: list[IntentMappingRow] = []
        for index, topic in enumerate(self.topic):
            for point in IntentDataPoint:
                cells: list[str] = getattr(self, point.value)
                target = cells[index].strip() if index < len(cells) else ""
                if topic.strip() and target:
                    rows.append(
                        IntentMappingRow(
                            topic=topic.strip(), data_point=point, target_attribute=target
                        )
                    )
        return rows


@admin_router.get("/integrations/dynamics/export/intent")
def intent_tab(
    request: Request, db: SessionDep, user: AdminUser, settings: SettingsDep
) -> Response:
    return _intent_page(request, db, user, settings)


def _intent_page(
    request: Request,
    db: SessionDep,
    user: User,
    settings: Settings,
    *,
    document: ExportSettingsDocument | None = None,
    error: GtmsyncError | None = None,
    issues: list[Issue] | None = None,
    extra_topics: list[str] | None = None,
) -> Response:
    from gtmsync.export import intent

    current = document or export_settings.get_document(db, user.org_id)
    known = [*intent.topics(db), *(extra_topics or [])]
    return _page(
        request,
        "export_settings/intent.html",
        db,
        user,
        settings,
        document=current,
        error=error,
        issues=issues,
        extra={
            "grid": intent.grid(current.intent_mappings, known),
            "points": list(IntentDataPoint),
            "point_labels": intent.DATA_POINT_LABELS,
        },
    )


@admin_router.post("/integrations/dynamics/export/intent")
def save_intent_tab(
    request: Request,
    form: Annotated[IntentForm, Form()],
    db: SessionDep,
    user: AdminUser,
    settings: SettingsDep,
) -> Response:
    document = export_settings.get_document(db, user.org_id).model_copy(deep=True)
    document.intent_mappings = form.rows()
    if form.action == "add-topic":
        topic = form.new_topic.strip()
        return _intent_page(
            request, db, user, settings, document=document, extra_topics=[topic] if topic else []
        )
    try:
        export_settings.save(
            db,
            user.org_id,
            user,
            document,
            settings=settings,
            expected_version=_version(form.version),
        )
    except MappingInvalidError as invalid:
        db.rollback()
        return _intent_page(
            request, db, user, settings, document=document, error=invalid, issues=invalid.issues
        )
    except GtmsyncError as error:
        db.rollback()
        return _intent_page(request, db, user, settings, document=document, error=error)
    return redirect(request, f"{BASE}/intent", flash="Intent mapping saved.")
