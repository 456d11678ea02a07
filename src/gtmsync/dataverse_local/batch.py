"""$batch placeholder (replaced below)."""

from __future__ import annotations

from gtmsync.dataverse_local import errors
from gtmsync.dataverse_local.context import Call, Reply


def execute(call: Call) -> Reply:
    raise errors.DataverseLocalError(501, "0x80060888", "$batch is not available yet.")
