"""SQL on the path of every chat turn, as single statements on the autocommit psycopg pool.

These run on the pool shared with the checkpointer (autocommit, server-side prepared statements)
rather than through SQLAlchemy: each is one round trip with no BEGIN/COMMIT around it, and the
turn's latency is the product. Everything else goes through SQLAlchemy.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Json

# The checks of a turn's start, all in the statement that takes the lease: the user is active, the
# token's login is live, the session is theirs, the thread free, the day's quota not used up, and
# fewer turns than the limits run for the user and in total. Two turns starting at the same instant
# may both pass a count; the limits can be exceeded by as many turns as race, never by more.
_TAKE_LEASE = """
UPDATE thread SET run_id = %(run_id)s, run_started_at = now()
FROM session, "user" u
WHERE thread.session_id = session.id
  AND session.id = %(session_id)s
  AND session.user_id = %(user_id)s
  AND (thread.run_id IS NULL OR thread.run_started_at < now() - %(stale_after)s)
  AND u.id = %(user_id)s AND u.is_active
  AND EXISTS (SELECT 1 FROM auth_session a WHERE a.id = %(login_id)s AND a.user_id = %(user_id)s)
  AND NOT EXISTS (
      SELECT 1 FROM usage_daily d WHERE d.user_id = %(user_id)s AND d.day = %(day)s
        AND (d.messages >= coalesce(u.daily_message_quota, %(message_quota)s)
             OR d.tokens >= coalesce(u.daily_token_quota, %(token_quota)s)))
  AND (SELECT count(*) FROM (
          SELECT 1 FROM thread t JOIN session s ON s.id = t.session_id
          WHERE t.run_id IS NOT NULL AND t.run_started_at >= now() - %(stale_after)s
            AND s.user_id = %(user_id)s
          LIMIT %(per_user)s) AS mine) < %(per_user)s
  AND (SELECT count(*) FROM (
          SELECT 1 FROM thread t
          WHERE t.run_id IS NOT NULL AND t.run_started_at >= now() - %(stale_after)s
          LIMIT %(total)s) AS running) < %(total)s
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
), counted AS (
    INSERT INTO usage_daily (user_id, day, messages, tokens)
    SELECT %(user_id)s, %(day)s, 1, %(input_tokens)s::bigint + %(output_tokens)s::bigint FROM released
    ON CONFLICT (user_id, day) DO UPDATE
    SET messages = usage_daily.messages + 1, tokens = usage_daily.tokens + EXCLUDED.tokens
)
SELECT max(id) AS last_id FROM inserted
"""


@dataclass(frozen=True)
class TurnLimits:
    """What a user may start; None quotas are unlimited (a user's own override still applies)."""

    message_quota: int | None
    token_quota: int | None
    per_user: int
    total: int


@dataclass(frozen=True)
class Lease:
    thread_id: uuid.UUID
    checkpoint_id: str | None


async def take_lease(
    conn: AsyncConnection[Any],
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    login_id: uuid.UUID,
    run_id: uuid.UUID,
    stale_after: timedelta,
    limits: TurnLimits,
    day: date,
) -> Lease | None:
    """Every check of _TAKE_LEASE, and the lease, in one statement.

    None when any check fails; the caller tells them apart (rare, so it may cost more).
    """
    cur = await conn.execute(
        _TAKE_LEASE,
        {
            "run_id": run_id,
            "session_id": session_id,
            "user_id": user_id,
            "login_id": login_id,
            "stale_after": stale_after,
            "day": day,
            "message_quota": limits.message_quota,
            "token_quota": limits.token_quota,
            "per_user": limits.per_user,
            "total": limits.total,
        },
    )
    row = await cur.fetchone()
    return None if row is None else Lease(row["id"], row["checkpoint_id"])


async def record_turn(
    conn: AsyncConnection[Any],
    *,
    thread_id: uuid.UUID,
    user_id: uuid.UUID,
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
    prune the thread's older checkpoints, so storage per thread stays bounded too, and count the
    turn and its tokens towards the user's day (`now`'s UTC date).

    The messages are inserted only if this run still holds the lease, which the same statement
    releases. Returns the reply's id, or None when the lease was lost (the session was deleted
    or cleared meanwhile); then nothing was written.
    """
    cur = await conn.execute(
        _RECORD_TURN,
        {
            "thread_id": thread_id,
            "user_id": user_id,
            "day": now.astimezone(UTC).date(),
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
