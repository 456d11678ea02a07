"""Tables of the `sharing` feature (filled in by its issue)."""

from __future__ import annotations
