"""SQL for failed-login counters, keyed by account or client address."""

from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

_LOCKED_FOR = """
SELECT extract(epoch FROM max(locked_until) - now())::float AS seconds
FROM login_failure WHERE key = ANY(%(keys)s) AND locked_until > now()
"""

# Failures older than the window are forgotten: the count starts again at one.
_RECORD = """
INSERT INTO login_failure AS f (key, failures, last_failed_at) VALUES (%(key)s, 1, now())
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN f.last_failed_at < now() - %(window)s THEN 1 ELSE f.failures + 1 END,
    last_failed_at = now()
RETURNING failures
"""

_LOCK = "UPDATE login_failure SET locked_until = now() + %(lock)s WHERE key = %(key)s"
_CLEAR = "DELETE FROM login_failure WHERE key = %(key)s"
_DELETE_STALE = """
DELETE FROM login_failure
WHERE last_failed_at < now() - %(window)s AND (locked_until IS NULL OR locked_until < now())
"""


async def locked_for(conn: AsyncConnection[Any], keys: list[str]) -> float | None:
    """Seconds until the longest lock on any of the keys ends; None when none is locked."""
    cur = await conn.execute(_LOCKED_FOR, {"keys": keys})
    row = await cur.fetchone()
    return None if row is None or row["seconds"] is None else float(row["seconds"])


async def record(conn: AsyncConnection[Any], key: str, *, window: timedelta) -> int:
    """Count one failure; returns the failures now counted for the key."""
    cur = await conn.execute(_RECORD, {"key": key, "window": window})
    row = await cur.fetchone()
    assert row is not None
    return int(row["failures"])


async def lock(conn: AsyncConnection[Any], key: str, *, duration: timedelta) -> None:
    await conn.execute(_LOCK, {"key": key, "lock": duration})


async def clear(conn: AsyncConnection[Any], key: str) -> None:
    await conn.execute(_CLEAR, {"key": key})


async def delete_stale(conn: AsyncConnection[Any], *, window: timedelta) -> int:
    cur = await conn.execute(_DELETE_STALE, {"window": window})
    return cur.rowcount
