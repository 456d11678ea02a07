"""API consumption: count every Dataverse request of a run and stop at the org's daily budget.

The client calls `UsageMeter.on_request` before every attempt (retries included), so the
count is what Dynamics bills against the tenant's entitlement. Counts are kept in memory and
written to `import_api_usage` at each checkpoint, so a request costs no database write.

The default budget follows the seeds' advice to check the tenant's entitlement: Power Platform
request limits give a Dynamics 365 Enterprise licence 40,000 requests per 24 hours, and the
import should leave most of that to people and other integrations, so it defaults to a quarter.
Admins set their tenant's figure on the Import settings.
"""

from __future__ import annotations

import threading
from datetime import date

from gtmsync.dataverse import BudgetExceededError, RequestInfo
from gtmsync.kit.clock import utc_now

DEFAULT_DAILY_BUDGET = 10_000


class BudgetPausedError(BudgetExceededError):
    """The daily budget is spent: the run pauses and resumes from its checkpoint later."""


class UsageMeter:
    """The `on_request` hook of one run: counts requests and vetoes the one over budget."""

    def __init__(self, *, budget: int, used_today: int) -> None:
        self.budget = budget
        self.used_today = used_today
        self.day = utc_now().date()
        self.calls = 0  # this run
        self.unsaved = 0  # not yet written to the usage table
        # The runner reads the next page in a background thread (prefetch.py) while it
        # saves the counts of the last one: the counters change under this lock only.
        self._lock = threading.Lock()

    def remaining(self) -> int:
        return max(0, self.budget - self.used_today)

    def on_request(self, info: RequestInfo) -> None:  # noqa: ARG002 - the hook's signature
        today = utc_now().date()
        with self._lock:
            if today != self.day:  # a new UTC day starts a new budget
                self.day, self.used_today = today, 0
            if self.used_today >= self.budget:
                raise BudgetPausedError(
                    f"the import's daily Dataverse API budget of {self.budget} requests is used up"
                )
            self.used_today += 1
            self.calls += 1
            self.unsaved += 1

    def take_unsaved(self) -> tuple[date, int]:
        with self._lock:
            count, self.unsaved = self.unsaved, 0
            return self.day, count
