"""Imports every feature's models so `Base.metadata` is complete for Alembic and tests."""

from gtmsync.db.base import Base
from gtmsync.platform import models as platform_models  # noqa: F401

metadata = Base.metadata
