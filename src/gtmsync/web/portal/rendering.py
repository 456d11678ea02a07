"""Rendering helpers shared by every portal page: templates, redirects, flash messages.

Templates get `viewer` (who is signed in, or None), `csrf_token` and `flash` from a context
processor, and a `csrf_field()` global that every form includes, so a form without CSRF
protection has to be written on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.responses import RedirectResponse, Response

from gtmsync.kit.logging import request_id_var
from gtmsync.web.security import CSRF_FIELD, FLASH_COOKIE, CookieSigner, clear_cookie, set_cookie

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


@jinja2.pass_context
def csrf_field(context: jinja2.runtime.Context) -> Markup:
    token = context.get("csrf_token") or ""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(token))


def _portal_context(request: Request) -> dict[str, Any]:
    signer: CookieSigner = request.app.state.signer
    return {
        "viewer": getattr(request.state, "viewer", None),
        "csrf_token": getattr(request.state, "csrf_token", None),
        "flash": signer.flash(request.cookies.get(FLASH_COOKIE)),
        "current_path": request.url.path,
    }


def build_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["csrf_field"] = csrf_field
    return Jinja2Templates(env=env, context_processors=[_portal_context])


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, template, context or {}, status_code=status_code)
    if FLASH_COOKIE in request.cookies:
        clear_cookie(response, FLASH_COOKIE, request.app.state.settings)
    return response


def render_error(request: Request, *, status: int, message: str, fix: str | None) -> Response:
    titles = {
        400: "Check your input",
        401: "Sign in to continue",
        403: "You don't have access to this page",
        404: "Page not found",
        405: "Not allowed",
        409: "That clashes with something that exists",
        500: "Something went wrong",
    }
    context = {
        "status": status,
        "title": titles.get(status, "Something went wrong"),
        "message": message,
        "fix": fix,
        "request_id": request_id_var.get(),
    }
    return render(request, "errors/page.html", context, status_code=status)


def redirect(request: Request, url: str, *, flash: str | None = None) -> Response:
    """A 303 after a form post, or `HX-Redirect` when htmx asked, so the whole page changes."""
    if request.headers.get("HX-Request") == "true":
        response: Response = Response(status_code=200, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if flash is not None:
        signer: CookieSigner = request.app.state.signer
        set_cookie(response, FLASH_COOKIE, signer.sign_flash(flash), request.app.state.settings)
    return response
