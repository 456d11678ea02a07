"""`/api/v1` routes of the connection feature."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
