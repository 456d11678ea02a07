"""Queue plumbing without feature logic: huey on SQLite (embedded) or Redis (scale-out)."""
