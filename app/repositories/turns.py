"""SQL on the path of every chat turn, as single statements on the autocommit psycopg pool.

These run on the pool shared with the checkpointer (autocommit, server-side prepared statements)
rather than through SQLAlchemy: each is one round trip with no BEGIN/COMMIT around it, and the
turn's latency is the product. Everything else goes through SQLAlchemy.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Json

_TAKE_LEASE = """
UPDATE thread SET run_id = %(run_id)s, run_started_at = now()
FROM session
WHERE thread.session_id = session.id
  AND session.id = %(session_id)s
  AND session.user_id = %(user_id)s
  AND (thread.run_id IS NULL OR thread.run_started_at < now() - %(stale_after)s)
  AND EXISTS (SELECT 1 FROM "user" WHERE "user".id = %(user_id)s AND "user".is_active
              AND ("user".tokens_valid_after IS NULL OR "user".tokens_valid_after <= %(issued_at)s))
RETURNING thread.id, thread.checkpoint_id
"""

_RECORD_TURN = """
WITH released AS (
    UPDATE thread
    SET run_id = NULL, run_started_at = NULL, checkpoint_id = COALESCE(%(checkpoint_id)s, checkpoint_id)
    WHERE id = %(thread_id)s AND run_id = %(run_id)s
    RETURNING id
), pruned AS (
    -- Only the pointer's checkpoint is ever read again: drop the older ones of this thread.
    DELETE FROM checkpoints c USING released
    WHERE %(checkpoint_id)s::text IS NOT NULL AND c.thread_id = released.id::text
      AND c.checkpoint_ns = '' AND c.checkpoint_id < %(checkpoint_id)s
), pruned_writes AS (
    DELETE FROM checkpoint_writes w USING released
    WHERE %(checkpoint_id)s::text IS NOT NULL AND w.thread_id = released.id::text
      AND w.checkpoint_ns = '' AND w.checkpoint_id < %(checkpoint_id)s
), pruned_blobs AS (
    -- Blobs are per channel version; keep exactly the versions the pointer's checkpoint names.
    DELETE FROM checkpoint_blobs b USING released, checkpoints kept
    WHERE b.thread_id = released.id::text AND b.checkpoint_ns = ''
      AND kept.thread_id = b.thread_id AND kept.checkpoint_ns = '' AND kept.checkpoint_id = %(checkpoint_id)s
      AND (kept.checkpoint -> 'channel_versions' ->> b.channel) IS DISTINCT FROM b.version
), inserted AS (
    INSERT INTO message (thread_id, role, content, tool_calls, input_tokens, output_tokens, created_at)
    SELECT released.id, v.role, v.content, v.tool_calls, v.input_tokens, v.output_tokens, %(now)s
    FROM released CROSS JOIN (VALUES
        (1, 'user', %(user_text)s::text, NULL::json, NULL::integer, NULL::integer),
        (2, 'assistant', %(reply)s::text, %(tool_calls)s::json, %(input_tokens)s::integer,
            %(output_tokens)s::integer)
    ) AS v (n, role, content, tool_calls, input_tokens, output_tokens)
    ORDER BY v.n
    RETURNING id
)
SELECT max(id) AS last_id FROM inserted
"""


@dataclass(frozen=True)
class Lease:
    thread_id: uuid.UUID
    checkpoint_id: str | None


async def take_lease(
    conn: AsyncConnection[Any],
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    issued_at: datetime | None,
    run_id: uuid.UUID,
    stale_after: timedelta,
) -> Lease | None:
    """Active user, ownership and a free thread, checked and leased in one statement.

    None when the user is gone or disabled, the session is missing or not theirs, or a live run
    holds the thread; the caller tells those apart (rare, so it may cost more).
    """
    cur = await conn.execute(
        _TAKE_LEASE,
        {
            "run_id": run_id,
            "session_id": session_id,
            "user_id": user_id,
            "issued_at": issued_at,
            "stale_after": stale_after,
        },
    )
    row = await cur.fetchone()
    return None if row is None else Lease(row["id"], row["checkpoint_id"])


async def record_turn(
    conn: AsyncConnection[Any],
    *,
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    checkpoint_id: str | None,
    user_text: str,
    reply: str,
    tool_calls: list[dict[str, Any]] | None,
    input_tokens: int,
    output_tokens: int,
    now: datetime,
) -> int | None:
    """Append the user message and the reply, release the lease, move the checkpoint pointer,
    and prune the thread's older checkpoints, so storage per thread stays bounded too.

    The messages are inserted only if this run still holds the lease, which the same statement
    releases. Returns the reply's id, or None when the lease was lost (the session was deleted
    or cleared meanwhile); then nothing was written.
    """
    cur = await conn.execute(
        _RECORD_TURN,
        {
            "thread_id": thread_id,
            "run_id": run_id,
            "checkpoint_id": checkpoint_id,
            "user_text": user_text,
            "reply": reply,
            "tool_calls": Json(tool_calls) if tool_calls else None,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "now": now,
        },
    )
    row = await cur.fetchone()
    return None if row is None or row["last_id"] is None else int(row["last_id"])
