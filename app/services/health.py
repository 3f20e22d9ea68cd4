"""Readiness: the database answers and its schema is at the revision this code expects."""

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.migrations import current_revision
from app.errors import AppError

READY_TIMEOUT_SECONDS = 2.0


class NotReadyError(AppError):
    status_code = 503
    error = "not_ready"


async def check_ready(engine: AsyncEngine, expected_revision: str | None) -> str | None:
    """The schema revision when ready; NotReadyError otherwise."""
    try:
        # Bounded: during an outage the answer is "not ready" now, not after every connect timeout.
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            revision = await current_revision(engine)
    except Exception as exc:  # boundary: any failure to reach the database means "not ready"
        raise NotReadyError("database unreachable") from exc
    if revision != expected_revision:
        raise NotReadyError(f"database schema at {revision}, expected {expected_revision}")
    return revision
