"""Tables of the `crm_import` feature (filled in by its issue)."""

from __future__ import annotations
