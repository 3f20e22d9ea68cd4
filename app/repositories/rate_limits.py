"""SQL for the rate-limit counters: one upsert per counted request, on the database's clock."""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Windows are aligned on the database's clock, so every worker and replica agrees on them. A key
# seen in the window just before keeps that window's count as `previous_hits`.
_HIT = """
WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float AS now_s)
INSERT INTO rate_limit AS r (key, window_start, hits, previous_hits)
SELECT %(key)s, to_timestamp(floor(now_s / %(period)s) * %(period)s), 1, 0 FROM clock
ON CONFLICT (key) DO UPDATE SET
    previous_hits = CASE
        WHEN r.window_start = EXCLUDED.window_start THEN r.previous_hits
        WHEN r.window_start = EXCLUDED.window_start - make_interval(secs => %(period)s) THEN r.hits
        ELSE 0 END,
    hits = CASE WHEN r.window_start = EXCLUDED.window_start THEN r.hits + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING hits, previous_hits, (SELECT now_s FROM clock) - extract(epoch FROM window_start)::float AS elapsed
"""

# A refused request does not count: a client that waits as told gets in.
_UNCOUNT = "UPDATE rate_limit SET hits = hits - 1 WHERE key = %(key)s AND hits > 0"
_DELETE_STALE = "DELETE FROM rate_limit WHERE window_start < now() - %(age)s"


@dataclass(frozen=True)
class Count:
    hits: int  # in the current window, this request included
    previous_hits: int  # in the window before
    elapsed: float  # seconds since the current window began


async def hit(conn: AsyncConnection[Any], *, key: str, period: int) -> Count:
    cur = await conn.execute(_HIT, {"key": key, "period": period})
    row = await cur.fetchone()
    assert row is not None
    return Count(int(row["hits"]), int(row["previous_hits"]), float(row["elapsed"]))


async def uncount(conn: AsyncConnection[Any], *, key: str) -> None:
    await conn.execute(_UNCOUNT, {"key": key})


async def delete_stale(conn: AsyncConnection[Any], *, age: timedelta) -> int:
    cur = await conn.execute(_DELETE_STALE, {"age": age})
    return cur.rowcount


async def delete_for_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The user's counters (keys `<limit>:user:<id>`), with their account. Counters keyed by address
    are not theirs alone and expire with housekeeping."""
    await session.execute(text("DELETE FROM rate_limit WHERE key LIKE '%:user:' || :u"), {"u": str(user_id)})
