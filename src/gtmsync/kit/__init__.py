"""Helpers that know nothing about gtmsync's features."""
