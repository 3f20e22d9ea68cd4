"""SQL for the per-minute counts of failed and refused requests (api_event_count)."""

from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

# One statement for a whole batch: every (minute, kind) pair once, added to what is there.
_ADD = """
INSERT INTO api_event_count AS c (bucket_start, kind, count)
SELECT * FROM unnest(%(buckets)s::timestamptz[], %(kinds)s::text[], %(counts)s::int[])
ON CONFLICT (bucket_start, kind) DO UPDATE SET count = c.count + EXCLUDED.count
"""
_DELETE_OLD = "DELETE FROM api_event_count WHERE bucket_start < now() - %(age)s"


async def add(conn: AsyncConnection[Any], counts: dict[tuple[datetime, str], int]) -> None:
    if not counts:
        return
    keys = sorted(counts)  # a fixed order: two workers' batches never deadlock on each other's rows
    await conn.execute(
        _ADD,
        {
            "buckets": [bucket for bucket, _ in keys],
            "kinds": [kind for _, kind in keys],
            "counts": [counts[key] for key in keys],
        },
    )


async def delete_old(conn: AsyncConnection[Any], *, age: timedelta) -> int:
    cur = await conn.execute(_DELETE_OLD, {"age": age})
    return cur.rowcount
