"""Persistence plumbing shared by every feature: Base, engine, unit of work, repositories."""
