"""CSRF on every form: crawl the portal as each kind of person, replay every POST form
without its token and with a token from another session; each must be refused (403) and
change nothing. The crawl itself (GETs only) must change nothing either.

The forms are found by clicking through the pages (tests/security/crawl.py), so a form added
to any page reachable from the navigation is covered without a list; the route-level check
(every unsafe portal route refuses a bad token, even one no page links to) is in
tests/web/test_csrf.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.web import page_csrf, sign_in
from tests.security.crawl import Form, as_dict, crawl
from tests.security.world import World

pytestmark = pytest.mark.xdist_group("security-csrf")


@pytest.fixture(scope="module")
def people(world: World) -> Iterator[dict[str, TestClient]]:
    """Portal sessions: org A's admin and seller (connected org: the most forms), org B's."""
    clients: dict[str, TestClient] = {"b-admin": world.b_admin, "b-member": world.b_member}
    opened: list[TestClient] = []
    for key, login in (("a-admin", world.a.admin), ("a-seller", world.a.seller)):
        client = TestClient(world.app)
        client.__enter__()
        opened.append(client)
        assert sign_in(client, login).status_code == 303
        clients[key] = client
    yield clients
    for client in opened:
        client.__exit__(None, None, None)


# Reading a page that shows Dynamics data counts the API calls it made (the daily budget).
_COUNTERS = frozenset({"import_api_usage"})


@pytest.fixture(scope="module")
def forms(world: World, people: dict[str, TestClient]) -> dict[str, list[Form]]:
    """Every form each person can reach. The first crawl may store default settings rows on
    first read; a second crawl must then change nothing at all (no GET has side effects)."""
    for client in people.values():
        crawl(client)
    before = world.org_state(everyone=True, ignore=_COUNTERS)
    found = {who: _unique(crawl(client)) for who, client in people.items()}
    with TestClient(world.app) as anonymous:
        found["anonymous"] = _unique(crawl(anonymous, "/sign-in"))
    assert world.org_state(everyone=True, ignore=_COUNTERS) == before, "a GET changed rows"
    return found


def _unique(forms: list[Form]) -> list[Form]:
    """One form per action and set of fields (the same form on many pages counts once)."""
    kept: dict[tuple[str, frozenset[str]], Form] = {}
    for form in forms:
        kept.setdefault((form.action, frozenset(k for k, _ in form.data)), form)
    return list(kept.values())


def test_the_crawl_finds_the_forms(forms: dict[str, list[Form]]) -> None:
    actions = {f.action.split("?")[0] for found in forms.values() for f in found}
    assert {
        "/sign-in",
        "/sign-out",
        "/settings/api-tokens",
        "/admin/users",
        "/activities",
        "/admin/integrations/dynamics/general",
        "/admin/integrations/dynamics/toggle",
        "/admin/integrations/dynamics/user-mapping",
        "/admin/privacy/data-sharing",
        "/admin/integrations/dynamics/writeback",
    } <= actions, sorted(actions)
    assert any(a.startswith("/exports/") and a.endswith("/decisions") for a in actions)
    assert sum(len(found) for found in forms.values()) >= 30
    for found in forms.values():
        for form in found:
            assert ("csrf_token" in dict(form.data)) or form.action == "/sign-in", form


WHO = ["a-admin", "a-seller", "b-admin", "b-member", "anonymous"]


@pytest.mark.parametrize("who", WHO)
def test_every_form_refuses_a_missing_or_foreign_token(
    world: World, people: dict[str, TestClient], forms: dict[str, list[Form]], who: str
) -> None:
    assert forms[who], f"no forms found as {who}"
    if who == "anonymous":
        client = TestClient(world.app)
        client.__enter__()
        client.get("/sign-in")  # the pre-session cookie the form's token belongs to
        with TestClient(world.app) as other:
            foreign = page_csrf(other, "/sign-in")
    else:
        client = people[who]
        other_session = people["b-admin" if who != "b-admin" else "a-admin"]
        foreign = page_csrf(other_session)  # a valid token, of another session
    try:
        before = world.org_state(everyone=True)
        for form in forms[who]:
            for token in (None, foreign):
                pairs = form.without_csrf() + ([("csrf_token", token)] if token else [])
                response = client.post(form.action, data=as_dict(pairs), follow_redirects=False)
                assert response.status_code == 403, (who, form.action, token, response.text[:300])
                assert "security token" in response.text
        assert world.org_state(everyone=True) == before, f"a refused form changed rows ({who})"
        if who != "anonymous":  # refusing a request does not sign anyone out
            assert client.get("/search", follow_redirects=False).status_code == 200
    finally:
        if who == "anonymous":
            client.__exit__(None, None, None)


def test_a_replayed_form_with_its_own_token_is_accepted(
    people: dict[str, TestClient], forms: dict[str, list[Form]]
) -> None:
    """The control: the refusals above are the token's doing, not a broken replay."""
    client = people["b-member"]
    [form] = [f for f in forms["b-member"] if f.action == "/settings/api-tokens"]
    data = [(k, v) for k, v in form.without_csrf() if k != "name"]
    data += [("name", "replayed"), ("csrf_token", page_csrf(client))]
    response = client.post(form.action, data=as_dict(data), follow_redirects=False)
    assert response.status_code == 201, response.text[:300]
