"""Errors users can act on: each names the field at fault and the fix.

The portal and the API show `message` as is, so it must read well on its own. Retry logic
looks at the class (transient or terminal), never at the text.
"""

from __future__ import annotations


class GtmsyncError(Exception):
    """Base of gtmsync's own errors."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message

    def as_dict(self) -> dict[str, str | None]:
        return {"error": self.message, "field": self.field, "fix": self.fix}


class UserError(GtmsyncError):
    """Bad input: the person can fix it; never retried."""


class NotFoundError(GtmsyncError):
    """The thing does not exist or belongs to another org (never say which)."""

    status_code = 404


class PermissionDeniedError(GtmsyncError):
    """The signed-in user may not do this (for example: admin pages for a non-admin)."""

    status_code = 403


class ConflictError(GtmsyncError):
    """The request clashes with the current state (duplicate email, job already running)."""

    status_code = 409


class TransientError(GtmsyncError):
    """Worth retrying later: throttling, timeouts, a server that is briefly unavailable."""

    status_code = 503


class TerminalError(GtmsyncError):
    """Retrying will not help until someone changes something."""

    status_code = 422
