"""A Dataverse Web API-compatible server with Entra ID-like sign-in, for demo and tests."""
