"""Account association rules (seeds' *Export Considerations*): each situation in each mode."""

from __future__ import annotations

import uuid

import pytest

from gtmsync.export.association import CREATE, NONE, choose, plan_association
from gtmsync.export.duplicates import Match
from gtmsync.export.schemas import (
    AssociationOptions,
    ManyMatchAccount,
    NoMatchAccount,
    OneMatchAccount,
)
from gtmsync.kit.errors import UserError

NEWER = Match("accounts", uuid.uuid4(), "name", "Acme (newer)", "2026-11-20T10:00:00Z")
OLDER = Match("accounts", uuid.uuid4(), "name", "Acme (older)", "2025-01-01T10:00:00Z")


def plan(options: AssociationOptions, *candidates: Match) -> dict[str, object]:
    return plan_association(
        options, company_platform_id="C1", company_name="Acme", candidates=list(candidates)
    )


class TestNoMatch:
    def test_manual_default_proposes_creating_and_asks(self) -> None:
        result = plan(AssociationOptions())
        assert result["situation"] == "none"
        assert result["choice"] == CREATE
        assert result["allowed"] == [CREATE, NONE]
        assert result["needs_review"] is True

    def test_automatic_creates_without_asking(self) -> None:
        result = plan(AssociationOptions(no_match=NoMatchAccount.AUTOMATIC))
        assert (result["choice"], result["needs_review"]) == (CREATE, False)


class TestOneMatch:
    def test_manual_confirms_the_one_account(self) -> None:
        result = plan(AssociationOptions(), NEWER)
        assert result["situation"] == "one"
        assert result["choice"] == str(NEWER.id)
        assert result["needs_review"] is True
        assert choose(result, NONE, label="x")["choice"] == NONE

    def test_automatic_associates(self) -> None:
        result = plan(AssociationOptions(one_match=OneMatchAccount.AUTOMATIC), NEWER)
        assert (result["choice"], result["needs_review"]) == (str(NEWER.id), False)


class TestSeveralMatches:
    def test_manual_needs_a_pick(self) -> None:
        result = plan(AssociationOptions(), NEWER, OLDER)
        assert result["situation"] == "many"
        assert result["choice"] is None
        assert result["needs_review"] is True
        assert choose(result, str(OLDER.id), label="x")["choice"] == str(OLDER.id)

    def test_automatic_takes_the_most_recently_modified(self) -> None:
        result = plan(AssociationOptions(many_match=ManyMatchAccount.AUTOMATIC), NEWER, OLDER)
        assert (result["choice"], result["needs_review"]) == (str(NEWER.id), False)
        with pytest.raises(UserError):
            choose(result, str(OLDER.id), label="x")

    def test_either_preselects_the_most_recent_and_lets_the_person_change_it(self) -> None:
        result = plan(AssociationOptions(many_match=ManyMatchAccount.EITHER), NEWER, OLDER)
        assert (result["choice"], result["needs_review"]) == (str(NEWER.id), True)
        assert choose(result, str(OLDER.id), label="x")["choice"] == str(OLDER.id)

    def test_a_choice_outside_the_options_names_them(self) -> None:
        result = plan(AssociationOptions(), NEWER, OLDER)
        with pytest.raises(UserError, match="Choose one of") as caught:
            choose(result, CREATE, label="Ann Lee")
        assert "Acme (newer)" in str(caught.value)
        assert caught.value.field == "account"
