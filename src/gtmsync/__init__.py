"""gtmsync: a self-hostable bridge between a B2B data platform and Dynamics 365."""

__version__ = "0.1.0"
