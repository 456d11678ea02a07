"""Sign-in and sign-out.

Sign-in always starts a brand-new server-side session and deletes the one the browser held
before (session fixation), and clears the pre-session CSRF cookie that protected the form.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from gtmsync.kit.errors import UserError
from gtmsync.platform import service as platform_service
from gtmsync.web.deps import AuthDep, SessionDep, SettingsDep, SignerDep
from gtmsync.web.portal.forms import SignInForm
from gtmsync.web.portal.rendering import redirect, render
from gtmsync.web.security import (
    PRESESSION_COOKIE,
    PRESESSION_MAX_AGE_SECONDS,
    SESSION_COOKIE,
    clear_cookie,
    safe_next,
    set_cookie,
)

public_router = APIRouter()
member_router = APIRouter()


def _sign_in_page(
    request: Request,
    auth: AuthDep,
    signer: SignerDep,
    settings: SettingsDep,
    *,
    form: SignInForm,
    error: UserError | None = None,
) -> Response:
    """The form, with a pre-session CSRF token unless a session already provides one."""
    new_presession = None
    if auth is None or auth.login_session is None:
        token = signer.presession_token(request.cookies.get(PRESESSION_COOKIE))
        if token is None:
            new_presession = signer.new_presession()
            token = new_presession.raw
        request.state.csrf_token = token
    context = {
        "form": form,
        "next": safe_next(form.next, default=""),
        "error": error,
        "ask_org": form.org != "" or (error is not None and error.field == "org"),
    }
    response = render(request, "auth/sign_in.html", context, status_code=400 if error else 200)
    if new_presession is not None:
        set_cookie(
            response,
            PRESESSION_COOKIE,
            new_presession.signed,
            settings,
            max_age=PRESESSION_MAX_AGE_SECONDS,
        )
    return response


@public_router.get("/sign-in")
def sign_in_form(
    request: Request,
    *,
    auth: AuthDep,
    signer: SignerDep,
    settings: SettingsDep,
    next: str = "",
) -> Response:
    return _sign_in_page(request, auth, signer, settings, form=SignInForm(next=next))


@public_router.post("/sign-in")
def sign_in(
    request: Request,
    *,
    form: Annotated[SignInForm, Form()],
    db: SessionDep,
    auth: AuthDep,
    signer: SignerDep,
    settings: SettingsDep,
) -> Response:
    try:
        user = platform_service.authenticate(
            db, email=form.email, password=form.password, org_slug=form.org_slug
        )
    except UserError as error:
        blank = SignInForm(email=form.email, org=form.org, next=form.next)
        return _sign_in_page(request, auth, signer, settings, form=blank, error=error)
    previous = signer.session_id(request.cookies.get(SESSION_COOKIE))
    if previous is not None:
        platform_service.end_session(db, previous)
    new = platform_service.start_session(db, user, max_age_seconds=settings.session_max_age_seconds)
    response = redirect(request, safe_next(form.next))
    set_cookie(response, SESSION_COOKIE, signer.sign_session(new.cookie_value), settings)
    clear_cookie(response, PRESESSION_COOKIE, settings)
    return response


@member_router.post("/sign-out")
def sign_out(
    request: Request, db: SessionDep, signer: SignerDep, settings: SettingsDep
) -> Response:
    session_id = signer.session_id(request.cookies.get(SESSION_COOKIE))
    if session_id is not None:
        platform_service.end_session(db, session_id)
    response = redirect(request, "/sign-in", flash="You are signed out.")
    clear_cookie(response, SESSION_COOKIE, settings)
    return response
