"""Every route of the app, read from `app.routes`, so a route added later is covered too.

Parametrisation needs the list at collection time, so it comes from an app built on an
in-memory database at import (routes do not depend on the database).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi.routing import iter_route_contexts

from gtmsync.settings import Mode, Settings
from gtmsync.web.app import create_app
from gtmsync.web.deps import require_admin
from tests.fixtures.web import TEST_SECRET_KEY

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    params: tuple[str, ...]  # path parameter names, in order
    admin: bool  # `require_admin` is somewhere in its dependency tree

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _calls(dependant: Any) -> set[Any]:
    calls = {dependant.call}
    for sub in dependant.dependencies:
        calls |= _calls(sub)
    return calls


def app_routes() -> list[Route]:
    app = create_app(
        Settings(
            database_url="sqlite://",
            secret_key=TEST_SECRET_KEY,
            mode=Mode.DEVELOPMENT,
            _env_file=None,  # type: ignore[call-arg]
        )
    )
    found: set[Route] = set()
    try:
        for context in iter_route_contexts(app.routes):
            dependant = getattr(context.route, "dependant", None)  # None: docs, openapi.json
            params = tuple(_PARAM.findall(context.path or ""))
            admin = dependant is not None and require_admin in _calls(dependant)
            for method in context.methods or ():
                if method != "HEAD":
                    found.add(Route(method, context.path or "", params, admin))
    finally:
        app.state.engine.dispose()
    return sorted(found, key=lambda r: (r.path, r.method))


ROUTES = app_routes()
