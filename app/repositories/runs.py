"""Runs and their events: all of their SQL, on the autocommit psycopg pool (one round trip each)."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories.leases import live

FINISHED = ("success", "error", "cancelled")
# A stream ends when its run finished, or waits for a person (it goes on after a resume).
STREAM_ENDS = (*FINISHED, "interrupted")
RUN_COLUMNS = (
    "id, session_id, source, status, message, multitask, from_message_id, error, reply_message_id, "
    "cancel_requested, cancel_mode, interrupt, expires_at, last_seq, created_at, started_at, finished_at"
)


@dataclass(frozen=True)
class RunRow:
    id: uuid.UUID
    session_id: uuid.UUID
    source: str
    status: str
    message: str | None
    multitask: str
    from_message_id: int | None
    error: str | None
    reply_message_id: int | None
    cancel_requested: bool
    cancel_mode: str | None
    interrupt: dict[str, Any] | None
    expires_at: datetime | None
    last_seq: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class EventRow:
    seq: int
    event: str
    data: dict[str, Any]


# (seq, event name, payload)
NewEvent = tuple[int, str, dict[str, Any]]

_APPEND = """
INSERT INTO run_event (run_id, seq, event, data)
SELECT %(run_id)s, x.seq, x.event, x.data::jsonb
FROM unnest(%(seqs)s::int[], %(events)s::text[], %(datas)s::text[]) AS x(seq, event, data)
"""

# The last events and the final status in one statement: a reader that sees the run finished has
# every one of its events in the same snapshot.
_FINISH = """
WITH appended AS (
    INSERT INTO run_event (run_id, seq, event, data)
    SELECT %(run_id)s, x.seq, x.event, x.data::jsonb
    FROM unnest(%(seqs)s::int[], %(events)s::text[], %(datas)s::text[]) AS x(seq, event, data)
    WHERE EXISTS (SELECT 1 FROM run WHERE id = %(run_id)s)
)
UPDATE run SET status = %(status)s, error = %(error)s,
    reply_message_id = coalesce(%(reply_message_id)s, reply_message_id),
    last_seq = greatest(last_seq, coalesce((SELECT max(s) FROM unnest(%(seqs)s::int[]) AS s), 0)),
    started_at = coalesce(started_at, now()), finished_at = now()
WHERE id = %(run_id)s
"""

_GET = f"""
SELECT {RUN_COLUMNS} FROM run WHERE id = %(id)s AND session_id = %(session_id)s AND user_id = %(user_id)s
"""  # noqa: S608 (constants only)

_SESSION_OWNED = "SELECT 1 FROM session WHERE id = %(session_id)s AND user_id = %(user_id)s"

_LIST = f"""
SELECT {RUN_COLUMNS} FROM run WHERE session_id = %(session_id)s
ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
"""  # noqa: S608 (constants only)

_COUNT = "SELECT count(*) AS n FROM run WHERE session_id = %(session_id)s"

# The status and the next events from one snapshot (see _FINISH).
_EVENTS_AFTER = """
SELECT r.status, e.seq, e.event, e.data
FROM run r LEFT JOIN LATERAL (
    SELECT seq, event, data FROM run_event
    WHERE run_id = r.id AND seq > %(after)s ORDER BY seq LIMIT %(limit)s
) e ON true
WHERE r.id = %(run_id)s
ORDER BY e.seq
"""

# Where each followed run stands, for all of a process's streams at once: its last event through the
# primary key (run_id, seq), read backwards, one row per run.
_PROGRESS = """
SELECT r.id, r.status, coalesce(e.seq, 0) AS last_seq
FROM run r LEFT JOIN LATERAL (
    SELECT seq FROM run_event WHERE run_id = r.id ORDER BY seq DESC LIMIT 1
) e ON true
WHERE r.id = ANY(%(ids)s)
"""

# A queued run ends here and now (no process has it); a running one is stopped by its process.
_REQUEST_CANCEL = f"""
WITH asked AS (
    UPDATE run SET cancel_requested = true, cancel_mode = coalesce(cancel_mode, 'cancel'),
        status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
        finished_at = CASE WHEN status = 'pending' THEN now() END
    WHERE id = %(id)s AND session_id = %(session_id)s AND user_id = %(user_id)s
      AND status IN ('pending', 'running')
    RETURNING {RUN_COLUMNS}
), noted AS (
    INSERT INTO run_event (run_id, seq, event, data)
    SELECT id, last_seq + 1, 'error', %(cancelled)s::jsonb FROM asked WHERE status = 'cancelled'
)
SELECT * FROM asked
"""  # noqa: S608 (constants only)

_CANCELLED_AMONG = "SELECT id, cancel_mode FROM run WHERE id = ANY(%(ids)s) AND cancel_requested"

# A running run is orphaned when no thread holds a live lease under its id: the process running it
# stopped (a run's id is its lease's). A run that just completed has released its lease a moment before
# it writes its status too: the sweeper confirms a candidate after a pause, with the same condition.
# (A pending run is queued: it holds no lease yet.)
_ORPHANED = f"""
run.status = 'running'
AND NOT EXISTS (SELECT 1 FROM thread t WHERE t.run_id = run.id AND {live("t")})
"""  # noqa: S608 (the lease rule, a constant)

_ORPHAN_CANDIDATES = f"SELECT id FROM run WHERE {_ORPHANED}"  # noqa: S608 (constants only)

# The sure case, needing no pause: the run's thread still names it, but the lease has expired. A live
# process renews its leases every third of the TTL, so this one stopped. (The thread is found by its
# session, whose index is unique; the unfinished runs by their partial index.)
_EXPIRED = f"""
SELECT run.id FROM run JOIN thread t ON t.session_id = run.session_id AND t.run_id = run.id
WHERE run.status = 'running' AND NOT {live("t")}
"""  # noqa: S608 (the lease rule, a constant)

# Its stream gets a last `error` event.
_MARK_ORPHANS = f"""
WITH orphaned AS (
    UPDATE run SET status = 'error', error = 'run_lost', finished_at = now(),
        started_at = coalesce(started_at, now())
    WHERE run.id = ANY(%(ids)s) AND {_ORPHANED}
    RETURNING id
), noted AS (
    INSERT INTO run_event (run_id, seq, event, data)
    SELECT o.id, coalesce((SELECT max(seq) FROM run_event e WHERE e.run_id = o.id), 0) + 1, 'error',
           jsonb_build_object('error', 'run_lost', 'detail', %(detail)s::text)
    FROM orphaned o
)
SELECT count(*) AS n FROM orphaned
"""  # noqa: S608 (constants only)

_DELETE_OLD_EVENTS = """
DELETE FROM run_event e USING run r
WHERE e.run_id = r.id AND r.finished_at < now() - %(age)s
"""


def event_arrays(run_id: uuid.UUID, events: list[NewEvent]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "seqs": [e[0] for e in events],
        "events": [e[1] for e in events],
        "datas": [json.dumps(e[2], ensure_ascii=False) for e in events],
    }


_END_CHAT_RUN = """
UPDATE run SET status = :status, error = :error, finished_at = now()
WHERE id = :run_id AND status = 'running'
"""


async def end_chat_run(session: AsyncSession, run_id: uuid.UUID, *, status: str, error: str | None) -> None:
    """A chat route's run that did not complete (a runs API run ends with its event log)."""
    await session.execute(text(_END_CHAT_RUN), {"run_id": run_id, "status": status, "error": error})


async def append(conn: AsyncConnection[Any], run_id: uuid.UUID, events: list[NewEvent]) -> None:
    await conn.execute(_APPEND, event_arrays(run_id, events))


async def finish(
    conn: AsyncConnection[Any],
    run_id: uuid.UUID,
    *,
    status: str,
    error: str | None,
    reply_message_id: int | None,
    events: list[NewEvent],
) -> None:
    await conn.execute(
        _FINISH,
        {
            **event_arrays(run_id, events),
            "status": status,
            "error": error,
            "reply_message_id": reply_message_id,
        },
    )


async def get(
    conn: AsyncConnection[Any], *, run_id: uuid.UUID, session_id: uuid.UUID, user_id: uuid.UUID
) -> RunRow | None:
    cur = await conn.execute(_GET, {"id": run_id, "session_id": session_id, "user_id": user_id})
    row = await cur.fetchone()
    return None if row is None else RunRow(**row)


async def list_for_session(
    conn: AsyncConnection[Any], *, session_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[RunRow], int] | None:
    """The session's runs, newest first, and how many it has; None when it is not the user's."""
    keys = {"session_id": session_id, "user_id": user_id, "limit": limit, "offset": offset}
    cur = await conn.execute(_SESSION_OWNED, keys)
    if await cur.fetchone() is None:
        return None
    cur = await conn.execute(_LIST, keys)
    items = [RunRow(**row) for row in await cur.fetchall()]
    cur = await conn.execute(_COUNT, keys)
    row = await cur.fetchone()
    return items, int(row["n"]) if row else 0


async def events_after(
    conn: AsyncConnection[Any], *, run_id: uuid.UUID, after: int, limit: int
) -> tuple[str | None, list[EventRow]]:
    """The run's status (None: it is gone) and up to `limit` of its events after seq `after`."""
    cur = await conn.execute(_EVENTS_AFTER, {"run_id": run_id, "after": after, "limit": limit})
    rows = await cur.fetchall()
    if not rows:
        return None, []
    events = [EventRow(r["seq"], r["event"], r["data"]) for r in rows if r["seq"] is not None]
    return str(rows[0]["status"]), events


async def progress(conn: AsyncConnection[Any], run_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, int]]:
    """(status, last seq, 0 before any event) of each of these runs that still exists."""
    cur = await conn.execute(_PROGRESS, {"ids": run_ids})
    return {row["id"]: (str(row["status"]), int(row["last_seq"])) for row in await cur.fetchall()}


async def request_cancel(
    conn: AsyncConnection[Any],
    *,
    run_id: uuid.UUID,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    event: dict[str, Any],
) -> RunRow | None:
    """Cancel a queued run (its stream gets `event`) or mark a running one to be stopped; None when
    there is no such run in either status."""
    cur = await conn.execute(
        _REQUEST_CANCEL,
        {"id": run_id, "session_id": session_id, "user_id": user_id, "cancelled": json.dumps(event)},
    )
    row = await cur.fetchone()
    return None if row is None else RunRow(**row)


async def cancelled_among(conn: AsyncConnection[Any], run_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Which of these runs were asked to stop, and how (cancel, interrupt, rollback)."""
    cur = await conn.execute(_CANCELLED_AMONG, {"ids": run_ids})
    return {row["id"]: row["cancel_mode"] or "cancel" for row in await cur.fetchall()}


async def orphan_candidates(conn: AsyncConnection[Any]) -> list[uuid.UUID]:
    cur = await conn.execute(_ORPHAN_CANDIDATES)
    return [row["id"] for row in await cur.fetchall()]


async def expired(conn: AsyncConnection[Any]) -> list[uuid.UUID]:
    """Unfinished runs whose own lease has expired: their process is gone."""
    cur = await conn.execute(_EXPIRED)
    return [row["id"] for row in await cur.fetchall()]


async def mark_orphans(conn: AsyncConnection[Any], run_ids: list[uuid.UUID], *, detail: str) -> int:
    """End these runs as errors if they are still orphaned; how many were."""
    cur = await conn.execute(_MARK_ORPHANS, {"ids": run_ids, "detail": detail})
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def delete_old_events(conn: AsyncConnection[Any], *, age: timedelta) -> int:
    cur = await conn.execute(_DELETE_OLD_EVENTS, {"age": age})
    return cur.rowcount
