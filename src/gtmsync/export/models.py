"""Tables of the `export` feature (filled in by its issue)."""

from __future__ import annotations
