"""SQL of the memory-extraction job queue (jobs are written by turns.record_turn).

A claim is a lease, not a held lock: the claimed job's `run_after` moves one TTL ahead and its consumer
keeps moving it while it works, so a consumer that dies frees its job within the TTL, and nothing
waits on a row lock while the model extracts.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

# Takes the oldest ready job and says whether another is ready, so that a consumer that emptied the
# queue waits to be woken instead of asking again. The second row is only looked at, never claimed.
_CLAIM = """
WITH ready AS (
    SELECT id, run_after FROM memory_job WHERE failed_at IS NULL AND run_after <= now()
    ORDER BY run_after, id LIMIT 2 FOR UPDATE SKIP LOCKED)
UPDATE memory_job SET attempts = attempts + 1, run_after = now() + %(claim)s
WHERE id = (SELECT id FROM ready ORDER BY run_after, id LIMIT 1)
RETURNING id, user_id, session_id, text, attempts, (SELECT count(*) FROM ready) > 1 AS more
"""

_RETRY = """
UPDATE memory_job SET run_after = now() + %(delay)s, last_error = %(error)s,
    failed_at = CASE WHEN attempts >= %(max_attempts)s THEN now() END
WHERE id = %(id)s
RETURNING failed_at IS NOT NULL AS failed
"""

_STATS = """
SELECT count(*) FILTER (WHERE failed_at IS NULL) AS queued,
       count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE failed_at IS NULL)), 0) AS oldest
FROM memory_job
"""


@dataclass(frozen=True)
class Job:
    id: int
    user_id: uuid.UUID
    session_id: uuid.UUID
    text: str
    attempts: int
    more: bool = False  # another job was ready when this one was claimed


@dataclass(frozen=True)
class QueueStats:
    queued: int
    failed: int
    oldest_seconds: float


async def claim(conn: AsyncConnection[Any], *, claim_for: timedelta) -> Job | None:
    cur = await conn.execute(_CLAIM, {"claim": claim_for})
    row = await cur.fetchone()
    return None if row is None else Job(**row)


async def finish(conn: AsyncConnection[Any], job_id: int) -> None:
    await conn.execute("DELETE FROM memory_job WHERE id = %s", (job_id,))


async def retry_later(
    conn: AsyncConnection[Any], job_id: int, *, delay: timedelta, error: str, max_attempts: int
) -> bool:
    """Schedule the next attempt; True when this was the last one and the job is now failed."""
    cur = await conn.execute(
        _RETRY, {"id": job_id, "delay": delay, "error": error, "max_attempts": max_attempts}
    )
    row = await cur.fetchone()
    return bool(row and row["failed"])


async def extend_claims(conn: AsyncConnection[Any], job_ids: list[int], *, claim_for: timedelta) -> None:
    await conn.execute(
        "UPDATE memory_job SET run_after = now() + %s WHERE id = ANY(%s) AND failed_at IS NULL",
        (claim_for, job_ids),
    )


async def unclaim(conn: AsyncConnection[Any], job_id: int) -> None:
    """Give a job back untried (its consumer is shutting down)."""
    await conn.execute(
        "UPDATE memory_job SET run_after = now(), attempts = greatest(attempts - 1, 0) WHERE id = %s",
        (job_id,),
    )


async def ready_count(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM memory_job WHERE failed_at IS NULL AND run_after <= now()"
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def stats(conn: AsyncConnection[Any]) -> QueueStats:
    cur = await conn.execute(_STATS)
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns a row
    return QueueStats(int(row["queued"]), int(row["failed"]), float(row["oldest"]))


async def delete_failed(conn: AsyncConnection[Any], *, older_than: timedelta) -> int:
    cur = await conn.execute(
        "DELETE FROM memory_job WHERE failed_at IS NOT NULL AND failed_at < now() - %s", (older_than,)
    )
    return cur.rowcount
