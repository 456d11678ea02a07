"""Tables of the `writeback` feature (filled in by its issue)."""

from __future__ import annotations
