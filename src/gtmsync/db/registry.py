"""Imports every feature's models so `Base.metadata` is complete for Alembic and tests."""

from gtmsync.connection import models as connection_models  # noqa: F401
from gtmsync.crm_import import models as crm_import_models  # noqa: F401
from gtmsync.db.base import Base
from gtmsync.export import models as export_models  # noqa: F401
from gtmsync.jobs import models as jobs_models  # noqa: F401
from gtmsync.platform import models as platform_models  # noqa: F401
from gtmsync.search import models as search_models  # noqa: F401
from gtmsync.sharing import models as sharing_models  # noqa: F401
from gtmsync.writeback import models as writeback_models  # noqa: F401

metadata = Base.metadata
