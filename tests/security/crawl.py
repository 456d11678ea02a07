"""Crawl the portal like a person clicking every link, collecting every form on the way.

Written on the standard library's `html.parser` (no HTML library is a dependency, and the
portal's markup is our own and simple): links are same-site `<a href="/...">`, forms are
`<form method="post">` with their `<input>`, `<select>` (first or selected option) and
`<textarea>` fields, so a form can be replayed exactly as the browser would submit it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
from fastapi.testclient import TestClient


@dataclass
class Form:
    page: str  # where it was found
    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    selects: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> list[tuple[str, str]]:
        return self.fields + list(self.selects.items())

    def without_csrf(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.data if k != "csrf_token"]


def as_dict(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Form fields as the HTTP client takes them (a repeated name keeps every value)."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


class _PageParser(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.append(a["href"])
        elif tag == "form":
            if a.get("method", "get").lower() == "post":
                action = urljoin(self.page, a.get("action") or self.page)
                self._form = Form(page=self.page, action=action)
        elif self._form is None or ("name" not in a and tag != "option"):
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in {"checkbox", "radio"} and "checked" not in a:
                return
            if kind not in {"submit", "button", "file"}:
                self._form.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select is not None:
            if self._select not in self._form.selects or "selected" in a:
                self._form.selects[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea, self._text = a["name"], []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._form is not None and self._textarea is not None:
            self._form.fields.append((self._textarea, "".join(self._text)))
            self._textarea = None


# Links that end the session or stream a download rather than show a page.
_SKIP = ("/static/", "/sign-out", "/api/")


def crawl(
    client: TestClient | httpx.Client,
    start: str = "/",
    *,
    max_pages: int = 300,
    pages: list[str] | None = None,
) -> list[Form]:
    """Every POST form on every page reachable from `start` (one visit per path and query);
    the HTML of every page goes into `pages` when given."""
    seen: set[str] = set()
    queue: deque[str] = deque([start])
    forms: list[Form] = []
    while queue and len(seen) < max_pages:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url, follow_redirects=True)
        if response.status_code != 200 or "text/html" not in response.headers.get(
            "content-type", ""
        ):
            continue
        page = urlsplit(str(response.url))
        here = page.path + (f"?{page.query}" if page.query else "")
        if pages is not None:
            pages.append(response.text)
        parser = _PageParser(here)
        parser.feed(response.text)
        forms.extend(parser.forms)
        for link in parser.links:
            target = urljoin(here, link).split("#", 1)[0]
            if not target.startswith(_SKIP) and not target.endswith(".csv") and target not in seen:
                queue.append(target)
    return forms
