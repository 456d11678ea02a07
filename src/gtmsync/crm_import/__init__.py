"""Dynamics import: GTM data model, import mapping, rules, incremental and backfill runs."""
