"""Recording a completed turn, as one statement on the autocommit psycopg pool (the lease is taken in
leases.py).

These run on the pool shared with the checkpointer (autocommit, server-side prepared statements)
rather than through SQLAlchemy: each is one round trip with no BEGIN/COMMIT around it, and the
turn's latency is the product. Everything else goes through SQLAlchemy.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Json

_RECORD_TURN = """
WITH released AS (
    UPDATE thread
    SET run_id = NULL, lease_expires_at = NULL, checkpoint_id = COALESCE(%(checkpoint_id)s, checkpoint_id)
    WHERE id = %(thread_id)s AND run_id = %(run_id)s
    RETURNING id, session_id
), job AS (
    -- The message to learn from, durable from the moment the turn is: a consumer extracts it later.
    -- The backlog is bounded; counting stops at the bound, so a long queue costs no more than that.
    INSERT INTO memory_job (user_id, session_id, text)
    SELECT %(user_id)s, released.session_id, %(user_text)s FROM released
    WHERE %(remember)s AND (SELECT count(*) FROM (
        SELECT 1 FROM memory_job WHERE failed_at IS NULL LIMIT %(max_jobs)s) AS queued) < %(max_jobs)s
    RETURNING id
), pruned AS (
    -- Only the pointer's checkpoint and the one its turn started from (to replace that turn from)
    -- are ever read again: drop the older ones of this thread, and the replaced turn's.
    DELETE FROM checkpoints c USING released
    WHERE %(checkpoint_id)s::text IS NOT NULL AND c.thread_id = released.id::text
      AND c.checkpoint_ns = '' AND c.checkpoint_id < %(checkpoint_id)s
      AND c.checkpoint_id IS DISTINCT FROM %(keep_checkpoint_id)s::text
), pruned_writes AS (
    DELETE FROM checkpoint_writes w USING released
    WHERE %(checkpoint_id)s::text IS NOT NULL AND w.thread_id = released.id::text
      AND w.checkpoint_ns = '' AND w.checkpoint_id < %(checkpoint_id)s
      AND w.checkpoint_id IS DISTINCT FROM %(keep_checkpoint_id)s::text
), kept AS (
    SELECT c.checkpoint_id, c.checkpoint -> 'channel_versions' AS versions
    FROM checkpoints c JOIN released ON c.thread_id = released.id::text
    WHERE c.checkpoint_ns = '' AND c.checkpoint_id IN (%(checkpoint_id)s::text, %(keep_checkpoint_id)s::text)
), pruned_blobs AS (
    -- Blobs are per channel version; keep exactly the versions the kept checkpoints name.
    DELETE FROM checkpoint_blobs b USING released
    WHERE b.thread_id = released.id::text AND b.checkpoint_ns = ''
      AND EXISTS (SELECT 1 FROM kept WHERE kept.checkpoint_id = %(checkpoint_id)s)
      AND NOT EXISTS (SELECT 1 FROM kept WHERE (kept.versions ->> b.channel) = b.version)
), replaced AS (
    -- Regenerate or edit: the replaced turn's transcript goes with the statement recording its successor.
    DELETE FROM message m USING released
    WHERE %(replace_from_id)s::bigint IS NOT NULL AND m.thread_id = released.id
      AND m.id >= %(replace_from_id)s::bigint
), inserted AS (
    INSERT INTO message (thread_id, role, content, tool_calls, input_tokens, output_tokens, trace_id,
                         created_at)
    SELECT released.id, v.role, v.content, v.tool_calls, v.input_tokens, v.output_tokens, v.trace_id, %(now)s
    FROM released CROSS JOIN (VALUES
        (1, 'user', %(user_text)s::text, NULL::json, NULL::integer, NULL::integer, NULL::text),
        (2, 'assistant', %(reply)s::text, %(tool_calls)s::json, %(input_tokens)s::integer,
            %(output_tokens)s::integer, %(trace_id)s::text)
    ) AS v (n, role, content, tool_calls, input_tokens, output_tokens, trace_id)
    ORDER BY v.n
    RETURNING id
), named AS (
    -- A session still under its placeholder takes the name derived from its first turn, once; the
    -- flag is re-checked here so a rename that landed during the turn wins.
    UPDATE session SET name = %(auto_name)s, name_is_default = false
    FROM released
    WHERE %(auto_name)s::text IS NOT NULL AND session.id = released.session_id AND session.name_is_default
), ended AS (
    -- The turn's run: a chat route's ends here; one of the runs API ends with its event log, so a
    -- reader that sees it finished has all of its events (repositories/runs.py), but learns its message.
    UPDATE run SET message = coalesce(run.message, %(user_text)s),
        status = coalesce(%(run_status)s, run.status), error = CASE WHEN %(run_status)s::text IS NULL
            THEN run.error ELSE %(run_error)s END,
        reply_message_id = CASE WHEN %(run_status)s::text IS NULL THEN run.reply_message_id
            ELSE (SELECT max(id) FROM inserted) END,
        finished_at = CASE WHEN %(run_status)s::text IS NULL THEN run.finished_at ELSE now() END
    FROM released WHERE run.id = %(run_id)s
), counted AS (
    INSERT INTO usage_daily (user_id, day, messages, tokens)
    SELECT %(user_id)s, %(day)s, 1, %(input_tokens)s::bigint + %(output_tokens)s::bigint FROM released
    ON CONFLICT (user_id, day) DO UPDATE
    SET messages = usage_daily.messages + 1, tokens = usage_daily.tokens + EXCLUDED.tokens
)
SELECT (SELECT max(id) FROM inserted) AS last_id, (SELECT count(*) FROM job) AS jobs
"""


# The turn a fork replaces (regenerate, edit, or `from_turn`): its user message (the transcript from
# there on is its), whether it is the last turn, and, for the last, the checkpoint it started from,
# which is the parent of the checkpoint it saved (one checkpoint per turn, with durability="exit") if
# record_turn kept it.
_FORK_POINT = """
SELECT m.id AS user_message_id, m.content AS user_text, m.is_last, c.parent_checkpoint_id,
       m.is_last AND EXISTS (SELECT 1 FROM checkpoints p WHERE p.thread_id = %(thread)s
           AND p.checkpoint_ns = '' AND p.checkpoint_id = c.parent_checkpoint_id) AS parent_kept
FROM (SELECT x.id, x.content, NOT EXISTS (
          SELECT 1 FROM message n WHERE n.thread_id = %(thread_id)s AND n.role = 'user' AND n.id > x.id
      ) AS is_last
      FROM message x WHERE x.thread_id = %(thread_id)s AND x.role = 'user'
        AND (%(message_id)s::bigint IS NULL OR x.id = %(message_id)s::bigint)
      ORDER BY x.id DESC LIMIT 1) AS m
LEFT JOIN checkpoints c
    ON m.is_last AND c.thread_id = %(thread)s AND c.checkpoint_ns = ''
   AND c.checkpoint_id = %(checkpoint_id)s::text
"""

_BEFORE = """
SELECT role, content FROM message WHERE thread_id = %(thread_id)s AND id < %(message_id)s
ORDER BY id DESC LIMIT %(limit)s
"""


@dataclass(frozen=True)
class LastTurn:
    """A completed turn that a fork replaces."""

    user_message_id: int
    user_text: str
    is_last: bool
    parent_checkpoint_id: str | None  # None for a session's first turn, and for a turn not the last
    parent_kept: bool  # False for those, and for turns recorded before parents were kept


async def fork_point(
    conn: AsyncConnection[Any], *, thread_id: uuid.UUID, checkpoint_id: str | None, message_id: int | None
) -> LastTurn | None:
    """The thread's turn whose user message is `message_id` (None: its last completed turn), whose
    checkpoint, for the last, is `checkpoint_id` (the thread's pointer); None when there is no such
    turn. Read under the thread's lease, so that nothing changes it meanwhile."""
    cur = await conn.execute(
        _FORK_POINT,
        {
            "thread_id": thread_id,
            "thread": str(thread_id),
            "checkpoint_id": checkpoint_id,
            "message_id": message_id,
        },
    )
    row = await cur.fetchone()
    return None if row is None else LastTurn(**row)


async def transcript_before(
    conn: AsyncConnection[Any], *, thread_id: uuid.UUID, message_id: int, limit: int
) -> list[tuple[str, str]]:
    """The last `limit` (role, content) of the transcript before message `message_id`, oldest first."""
    cur = await conn.execute(_BEFORE, {"thread_id": thread_id, "message_id": message_id, "limit": limit})
    return [(row["role"], row["content"]) for row in reversed(await cur.fetchall())]


@dataclass(frozen=True)
class Recorded:
    message_id: int | None  # None when the lease was lost: nothing was written
    job_queued: bool


async def record_turn(
    conn: AsyncConnection[Any],
    *,
    thread_id: uuid.UUID,
    user_id: uuid.UUID,
    run_id: uuid.UUID,
    checkpoint_id: str | None,
    keep_checkpoint_id: str | None,
    replace_from_id: int | None,
    user_text: str,
    reply: str,
    tool_calls: list[dict[str, Any]] | None,
    input_tokens: int,
    output_tokens: int,
    now: datetime,
    remember: bool,
    max_jobs: int,
    auto_name: str | None = None,
    trace_id: str | None = None,
    run_status: str | None = None,
    run_error: str | None = None,
) -> Recorded:
    """Append the user message and the reply, release the lease, move the checkpoint pointer,
    prune the thread's other checkpoints but `keep_checkpoint_id` (the one this turn started from,
    unless it replaced the turn before), so storage per thread stays bounded too, delete the
    transcript from message `replace_from_id` on (the turn this one replaces), and count the
    turn and its tokens towards the user's day (`now`'s UTC date), and, with `remember`, queue the
    user's message for memory extraction (unless `max_jobs` wait already). With `auto_name`, a session
    still under its placeholder name takes that name. `trace_id` (the turn's Langfuse trace) is kept on
    the reply, for feedback to score it. With `run_status`, the turn's run row ends with it.

    The messages are inserted only if this run still holds the lease, which the same statement
    releases. The reply's id is None when the lease was lost (the session was deleted or cleared
    meanwhile); then nothing was written.
    """
    cur = await conn.execute(
        _RECORD_TURN,
        {
            "thread_id": thread_id,
            "user_id": user_id,
            "day": now.astimezone(UTC).date(),
            "run_id": run_id,
            "checkpoint_id": checkpoint_id,
            "keep_checkpoint_id": keep_checkpoint_id,
            "replace_from_id": replace_from_id,
            "user_text": user_text,
            "reply": reply,
            "tool_calls": Json(tool_calls) if tool_calls else None,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "now": now,
            "remember": remember,
            "max_jobs": max_jobs,
            "auto_name": auto_name,
            "trace_id": trace_id,
            "run_status": run_status,
            "run_error": run_error,
        },
    )
    row = await cur.fetchone()
    if row is None or row["last_id"] is None:
        return Recorded(None, job_queued=False)
    return Recorded(int(row["last_id"]), job_queued=row["jobs"] > 0)
