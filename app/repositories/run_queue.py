"""Runs queued behind a session's current run (double texting): their SQL."""

import json
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from app.repositories.leases import live
from app.repositories.runs import RUN_COLUMNS, RunRow

# The new run waits in the queue (bounded per session); with `interrupt` or `rollback`, the session's
# running run is asked to stop in the same statement, so that no second request can slip between.
_ENQUEUE = f"""
WITH owned AS (
    SELECT s.id FROM session s WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
), queued AS (
    SELECT count(*) AS n FROM run WHERE session_id = %(session_id)s AND status = 'pending'
), inserted AS (
    INSERT INTO run (id, session_id, user_id, login_id, source, status, message, multitask,
                     from_message_id, created_at)
    SELECT %(id)s, owned.id, %(user_id)s, %(login_id)s, 'runs', 'pending', %(message)s, %(multitask)s,
           %(from_message_id)s, clock_timestamp()
    FROM owned, queued WHERE queued.n < %(max_queued)s
    RETURNING {RUN_COLUMNS}
), stopped AS (
    UPDATE run SET cancel_requested = true, cancel_mode = %(multitask)s
    FROM inserted
    WHERE %(multitask)s IN ('interrupt', 'rollback') AND run.session_id = inserted.session_id
      AND run.status = 'running' AND NOT run.cancel_requested
    RETURNING run.id
)
SELECT inserted.*, (SELECT count(*) FROM owned) AS owned,
       coalesce((SELECT array_agg(id) FROM stopped), '{{}}') AS stopped
FROM (SELECT 1) AS one LEFT JOIN inserted ON true
"""  # noqa: S608 (constants only)

# The oldest queued run of each session whose thread is free, oldest sessions first.
_NEXT = f"""
SELECT DISTINCT ON (r.session_id) r.id, r.session_id, r.user_id, r.login_id, r.message, r.multitask,
       r.from_message_id, r.created_at
FROM run r JOIN thread t ON t.session_id = r.session_id
WHERE r.status = 'pending' AND NOT {live("t")}
ORDER BY r.session_id, r.created_at, r.id
LIMIT %(limit)s
"""  # noqa: S608 (the lease rule, a constant)

_FAIL = """
WITH failed AS (
    UPDATE run SET status = 'error', error = %(error)s, started_at = now(), finished_at = now()
    WHERE id = %(id)s AND status = 'pending'
    RETURNING id, last_seq
)
INSERT INTO run_event (run_id, seq, event, data)
SELECT id, last_seq + 1, 'error', %(data)s::jsonb FROM failed
"""


@dataclass(frozen=True)
class Queued:
    id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID
    login_id: uuid.UUID | None
    message: str | None
    multitask: str
    from_message_id: int | None


@dataclass(frozen=True)
class Enqueued:
    owned: bool  # False: no such session of this user
    run: RunRow | None  # None: the queue was full
    stopped: list[uuid.UUID]  # the running run(s) asked to stop (interrupt, rollback)


async def enqueue(
    conn: AsyncConnection[Any],
    *,
    run_id: uuid.UUID,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    login_id: uuid.UUID,
    message: str | None,
    multitask: str,
    from_message_id: int | None,
    max_queued: int,
) -> Enqueued:
    cur = await conn.execute(
        _ENQUEUE,
        {
            "id": run_id,
            "session_id": session_id,
            "user_id": user_id,
            "login_id": login_id,
            "message": message,
            "multitask": multitask,
            "from_message_id": from_message_id,
            "max_queued": max_queued,
        },
    )
    row = await cur.fetchone()
    assert row is not None  # the statement always returns its one row
    owned, stopped = bool(row.pop("owned")), list(row.pop("stopped"))
    run = RunRow(**row) if row["id"] is not None else None
    return Enqueued(owned, run, stopped)


async def next_queued(conn: AsyncConnection[Any], *, limit: int) -> list[Queued]:
    cur = await conn.execute(_NEXT, {"limit": limit})
    return [Queued(**{k: v for k, v in row.items() if k != "created_at"}) for row in await cur.fetchall()]


async def fail(conn: AsyncConnection[Any], run_id: uuid.UUID, *, error: str, detail: str) -> None:
    """End a queued run that cannot start (its user was disabled, the quota ran out, ...)."""
    data = json.dumps({"error": error, "detail": detail})
    await conn.execute(_FAIL, {"id": run_id, "error": error, "data": data})
