"""Contact → account association, per the admin's *Export Considerations* options.

Three situations, each manual by default (the seeds recommend manual):

- no matching account: create one and associate (the person confirms, or automatically);
- exactly one: associate with it (the person confirms, or automatically);
- several: the person picks, or the most recently modified is taken automatically, or
  either (the most recent is pre-selected and the person may change it).

A plan's association is a JSON dict kept on the export item: `situation`, `candidates`,
`choice` (an account id, `"create"` or `"none"`; None while a person still has to pick),
`allowed` choices and whether it `needs_review`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gtmsync.export.duplicates import Match
from gtmsync.export.schemas import (
    AssociationOptions,
    ManyMatchAccount,
    NoMatchAccount,
    OneMatchAccount,
)
from gtmsync.kit.errors import UserError

CREATE = "create"
NONE = "none"


def plan_association(
    options: AssociationOptions,
    *,
    company_platform_id: str,
    company_name: str,
    candidates: Sequence[Match],
) -> dict[str, Any]:
    """The association to propose for one contact whose company is `company_platform_id`."""
    ids = [str(c.id) for c in candidates]
    plan: dict[str, Any] = {
        "company_platform_id": company_platform_id,
        "company_name": company_name,
        "candidates": [c.as_json() for c in candidates],
    }
    if not candidates:
        automatic = options.no_match == NoMatchAccount.AUTOMATIC
        plan.update(
            situation="none",
            choice=CREATE,
            allowed=[CREATE] if automatic else [CREATE, NONE],
            needs_review=not automatic,
        )
    elif len(candidates) == 1:
        automatic = options.one_match == OneMatchAccount.AUTOMATIC
        plan.update(
            situation="one",
            choice=ids[0],
            allowed=ids if automatic else [*ids, NONE],
            needs_review=not automatic,
        )
    else:
        newest = ids[0]  # candidates come newest first
        mode = options.many_match
        plan.update(
            situation="many",
            choice=None if mode == ManyMatchAccount.MANUAL else newest,
            allowed=[newest] if mode == ManyMatchAccount.AUTOMATIC else ids,
            needs_review=mode != ManyMatchAccount.AUTOMATIC,
        )
    return plan


def choose(plan: dict[str, Any], choice: str, *, label: str) -> dict[str, Any]:
    """Apply a person's choice; a choice the options do not allow is refused, naming them."""
    allowed = [str(a) for a in plan.get("allowed", [])]
    if choice not in allowed:
        names = {str(c["id"]): f"{c['name']} ({c['id']})" for c in plan.get("candidates", [])}
        readable = ", ".join(
            {CREATE: "create (a new account)", NONE: "none (no account)"}.get(a, names.get(a, a))
            for a in allowed
        )
        raise UserError(
            f"{label}: {choice!r} is not an allowed account association.",
            field="account",
            fix=f"Choose one of: {readable}.",
        )
    return {**plan, "choice": choice}
