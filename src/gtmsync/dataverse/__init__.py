"""Dataverse Web API client library. Imports nothing else from gtmsync."""

__all__: list[str] = []
