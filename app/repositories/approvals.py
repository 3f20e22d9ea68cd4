"""Runs waiting for a person to approve a tool call: pausing one, and dropping one nobody answered."""

import json
import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from app.repositories.runs import NewEvent, event_arrays

# The lease is released but the run's checkpoints stay (abandoning would delete them): the run
# resumes from `checkpoint_id`. Its last events go with the status, as when a run finishes.
_PAUSE = """
WITH released AS (
    UPDATE thread SET run_id = NULL, lease_expires_at = NULL
    WHERE id = %(thread_id)s AND run_id = %(run_id)s
    RETURNING id
), paused AS (
    UPDATE run SET status = 'interrupted', interrupt = %(interrupt)s::jsonb,
        checkpoint_id = %(checkpoint_id)s, expires_at = %(expires_at)s, message = coalesce(message, %(text)s),
        cancel_requested = false, cancel_mode = NULL,
        last_seq = greatest(last_seq, coalesce((SELECT max(s) FROM unnest(%(seqs)s::int[]) AS s), 0))
    FROM released WHERE run.id = %(run_id)s
    RETURNING run.id
), appended AS (
    INSERT INTO run_event (run_id, seq, event, data)
    SELECT %(run_id)s, x.seq, x.event, x.data::jsonb
    FROM unnest(%(seqs)s::int[], %(events)s::text[], %(datas)s::text[]) AS x(seq, event, data)
    WHERE EXISTS (SELECT 1 FROM paused)
)
SELECT count(*) AS n FROM paused
"""

# The transcript keeps the turn that waited: its message, and a line saying what was not run and why.
_DROP = """
WITH waiting AS (
    SELECT id, session_id, message, last_seq,
           (SELECT string_agg(c ->> 'name', ', ') FROM jsonb_array_elements(interrupt -> 'tool_calls') c)
               AS tools
    FROM run WHERE id = %(run_id)s AND status = 'interrupted'
    FOR UPDATE
), dropped AS (
    UPDATE run SET status = 'cancelled', error = %(error)s, finished_at = now(), interrupt = NULL,
        checkpoint_id = NULL, expires_at = NULL
    FROM waiting WHERE run.id = waiting.id
    RETURNING run.id
), noted AS (
    INSERT INTO message (thread_id, role, content, created_at)
    SELECT t.id, v.role, v.content, clock_timestamp()
    FROM waiting JOIN thread t ON t.session_id = waiting.session_id CROSS JOIN LATERAL (VALUES
        (1, 'user', coalesce(waiting.message, '')),
        (2, 'assistant', format('(Waited for approval to run %%s. %%s)', coalesce(waiting.tools, 'a tool'),
                                %(reason)s::text))
    ) AS v (n, role, content)
    WHERE EXISTS (SELECT 1 FROM dropped)
    ORDER BY v.n
), evented AS (
    INSERT INTO run_event (run_id, seq, event, data)
    SELECT id, last_seq + 1, 'error', %(event)s::jsonb FROM waiting WHERE EXISTS (SELECT 1 FROM dropped)
)
SELECT count(*) AS n FROM dropped
"""

_EXPIRED = "SELECT id FROM run WHERE status = 'interrupted' AND expires_at <= now() LIMIT 100"


async def pause(
    conn: AsyncConnection[Any],
    *,
    run_id: uuid.UUID,
    thread_id: uuid.UUID,
    text: str,
    interrupt: dict[str, Any],
    checkpoint_id: str,
    expires_at: datetime,
    events: list[NewEvent],
) -> bool:
    """Release the run's lease and leave it waiting; False when it no longer held the lease."""
    cur = await conn.execute(
        _PAUSE,
        {
            **event_arrays(run_id, events),
            "thread_id": thread_id,
            "text": text,
            "interrupt": json.dumps(interrupt),
            "checkpoint_id": checkpoint_id,
            "expires_at": expires_at,
        },
    )
    row = await cur.fetchone()
    return bool(row and row["n"])


async def drop(
    conn: AsyncConnection[Any], run_id: uuid.UUID, *, error: str, reason: str, event: dict[str, Any]
) -> bool:
    """End a waiting run as cancelled with `error`, noting it in the transcript; False when it was
    not waiting any more."""
    cur = await conn.execute(
        _DROP, {"run_id": run_id, "error": error, "reason": reason, "event": json.dumps(event)}
    )
    row = await cur.fetchone()
    return bool(row and row["n"])


async def expired(conn: AsyncConnection[Any]) -> list[uuid.UUID]:
    cur = await conn.execute(_EXPIRED)
    return [row["id"] for row in await cur.fetchall()]
