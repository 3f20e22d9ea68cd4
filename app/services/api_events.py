"""Counting failed and refused requests for the admin overview, off the success path.

A request that ends in a 5xx or a 429 (or a stream that ends in such an error event) adds one to an
in-process tally: no I/O on the way out. The first tally of a quiet spell starts a tracked task that
waits `FLUSH_DELAY` and writes everything tallied meanwhile in one statement, so a storm of refusals
costs one statement per second per worker, not one per request. Best effort: a failed write is
logged and dropped, and a crashed worker loses its last second; shutdown writes what is left.
"""

import asyncio
import contextlib
from datetime import UTC, datetime

import structlog
from psycopg_pool import AsyncConnectionPool

from app.repositories import api_events as events_repo

log = structlog.get_logger(__name__)
FLUSH_DELAY = 1.0  # seconds
ERROR, RATE_LIMITED = "error", "rate_limited"  # the kinds' prefixes: "error.llm_unavailable", ...


def kind_of(status: int, error: str) -> str | None:
    """The kind counted for a response with this status and error code; None: not counted."""
    if status == 429:
        return f"{RATE_LIMITED}.{error}"
    if status >= 500:
        return f"{ERROR}.{error}"
    return None


class ApiEventCounter:
    def __init__(self, pool: AsyncConnectionPool, *, delay: float = FLUSH_DELAY) -> None:
        self._pool = pool
        self._delay = delay
        self._pending: dict[tuple[datetime, str], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None
        self._closed = False

    def record(self, status: int, error: str) -> None:
        kind = kind_of(status, error)
        if kind is None:
            return
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        self._pending[minute, kind] = self._pending.get((minute, kind), 0) + 1
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        while self._pending:  # what arrives during a write waits for the next round
            await asyncio.sleep(self._delay)
            await self.flush()

    async def flush(self) -> None:
        """Write the tally now (tests, shutdown)."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            # Shielded: a shutdown cancelling the round must not lose a batch already taken (close()
            # waits for this write).
            self._writing = asyncio.create_task(self._write(batch))
            await asyncio.shield(self._writing)
        except Exception as exc:  # a boundary: counting must never fail a request or the loop
            log.warning("api_events.flush_failed", error_type=type(exc).__name__, dropped=sum(batch.values()))

    async def _write(self, batch: dict[tuple[datetime, str], int]) -> None:
        async with self._pool.connection() as conn:
            await events_repo.add(conn, batch)

    async def close(self) -> None:
        """Stop the rounds and write what is left, the batch of a round cut short included."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writing is not None:
            with contextlib.suppress(Exception):
                await self._writing
        await self.flush()
