"""The agent protocol's reads and writes of sessions (its threads) and runs: all of their SQL, on the
autocommit psycopg pool."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from app.repositories.leases import live
from app.repositories.runs import RUN_COLUMNS, RunRow

# A thread's status as the protocol names it: busy while a run is queued or running, interrupted while
# one waits for approval, error when the last run failed, idle otherwise.
_THREAD = """
SELECT s.id, t.id AS thread_row_id, s.created_at, s.thread_metadata AS metadata, t.checkpoint_id,
       greatest(s.updated_at, last_run.at) AS updated_at,
       CASE WHEN EXISTS (SELECT 1 FROM run b WHERE b.session_id = s.id AND b.status IN ('pending', 'running'))
                THEN 'busy'
            WHEN w.id IS NOT NULL THEN 'interrupted'
            WHEN last_run.status = 'error' THEN 'error'
            ELSE 'idle' END AS status,
       w.id AS waiting_id, w.message AS waiting_message, w.interrupt AS waiting_interrupt,
       w.checkpoint_id AS waiting_checkpoint_id, w.expires_at AS waiting_expires_at,
       w.created_at AS waiting_created_at, w.last_seq AS waiting_last_seq
FROM session s JOIN thread t ON t.session_id = s.id
LEFT JOIN LATERAL (
    SELECT r.status, coalesce(r.finished_at, r.started_at, r.created_at) AS at FROM run r
    WHERE r.session_id = s.id ORDER BY r.created_at DESC LIMIT 1
) last_run ON true
LEFT JOIN LATERAL (
    SELECT r.id, r.message, r.interrupt, r.checkpoint_id, r.expires_at, r.created_at, r.last_seq FROM run r
    WHERE r.session_id = s.id AND r.status = 'interrupted' ORDER BY r.created_at DESC LIMIT 1
) w ON true
"""

_GET_THREAD = _THREAD + "WHERE s.id = %(id)s AND s.user_id = %(user_id)s"

# The list's threads carry their first message (what a thread list shows), not their whole state.
_SEARCH = f"""
SELECT * FROM (
    SELECT x.*, f.content AS first_message, f.id AS first_message_id, f.created_at AS first_message_at
    FROM ({_THREAD}
          WHERE s.user_id = %(user_id)s AND s.thread_metadata @> %(metadata)s::jsonb
            AND (%(ids)s::uuid[] IS NULL OR s.id = ANY(%(ids)s::uuid[]))) AS x
    LEFT JOIN LATERAL (
        SELECT m.id, m.content, m.created_at FROM message m
        WHERE m.thread_id = x.thread_row_id AND m.role = 'user' ORDER BY m.id LIMIT 1
    ) f ON true
) AS found
WHERE %(status)s::text IS NULL OR found.status = %(status)s::text
"""  # noqa: S608 (constants only)

# Only these columns sort a search (the order is spliced in, never a client's text).
SORTS = {"created_at": "created_at", "updated_at": "updated_at", "thread_id": "id", "status": "status"}

_TRANSCRIPT = """
SELECT id, role, content, tool_calls, created_at FROM message
WHERE thread_id = %(thread_row_id)s AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
ORDER BY id DESC LIMIT %(limit)s
"""

_IS_USER_MESSAGE = """
SELECT 1 FROM message WHERE thread_id = %(thread_row_id)s AND id = %(id)s AND role = 'user'
"""

_CREATE = """
WITH s AS (
    INSERT INTO session (id, user_id, name, name_is_default, memory_enabled, thread_metadata,
                         created_at, updated_at)
    VALUES (%(id)s, %(user_id)s, %(name)s, true, true, %(metadata)s::jsonb, now(), now())
    ON CONFLICT (id) DO NOTHING
    RETURNING id, created_at
), t AS (
    INSERT INTO thread (id, session_id, created_at) SELECT %(thread_row_id)s, id, created_at FROM s
)
SELECT id FROM s
"""

# The session is the user's; the assistant's ids join its metadata (a thread list filters on them).
_PREPARE_RUN = """
WITH s AS (
    SELECT id, thread_metadata FROM session WHERE id = %(id)s AND user_id = %(user_id)s
), merged AS (
    UPDATE session SET thread_metadata = session.thread_metadata || %(merge)s::jsonb
    FROM s WHERE session.id = s.id AND NOT s.thread_metadata @> %(merge)s::jsonb
)
SELECT t.checkpoint_id, w.id AS waiting_id, w.checkpoint_id AS waiting_checkpoint_id
FROM s JOIN thread t ON t.session_id = s.id
LEFT JOIN LATERAL (
    SELECT r.id, r.checkpoint_id FROM run r
    WHERE r.session_id = s.id AND r.status = 'interrupted' ORDER BY r.created_at DESC LIMIT 1
) w ON true
"""

_OWNED = "SELECT 1 FROM session WHERE id = %(id)s AND user_id = %(user_id)s"

_LIST_RUNS = f"""
SELECT {RUN_COLUMNS} FROM run
WHERE session_id = %(id)s AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
"""  # noqa: S608 (constants only)

_OUTCOME = """
SELECT r.status, r.error, r.reply_message_id,
       (SELECT e.data FROM run_event e WHERE e.run_id = r.id AND e.event = 'error'
        ORDER BY e.seq DESC LIMIT 1) AS error_event
FROM run r WHERE r.id = %(run_id)s AND r.session_id = %(id)s AND r.user_id = %(user_id)s
"""

_UNFINISHED = """
SELECT id FROM run WHERE session_id = %(id)s AND status IN ('pending', 'running', 'interrupted')
"""

_LEASED = f"SELECT {live('t')} AS leased FROM thread t WHERE t.session_id = %(id)s"  # noqa: S608


@dataclass(frozen=True)
class WaitingRun:
    """A run of the thread waiting for a person to approve a tool call."""

    id: uuid.UUID
    message: str | None
    interrupt: dict[str, Any] | None
    checkpoint_id: str | None
    expires_at: datetime | None
    created_at: datetime
    last_seq: int


@dataclass(frozen=True)
class ThreadRow:
    id: uuid.UUID  # the session's id: the protocol's thread_id
    thread_row_id: uuid.UUID  # LangGraph's thread_id (the `thread` row)
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    checkpoint_id: str | None  # the last completed turn's checkpoint
    status: str
    waiting: WaitingRun | None
    first_message: "TranscriptRow | None" = None  # search only


@dataclass(frozen=True)
class TranscriptRow:
    id: int
    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None
    created_at: datetime


@dataclass(frozen=True)
class RunPlan:
    """What a new run on the thread needs to know: where the thread stands."""

    checkpoint_id: str | None
    waiting_id: uuid.UUID | None
    waiting_checkpoint_id: str | None


@dataclass(frozen=True)
class Outcome:
    status: str
    error: str | None
    reply_message_id: int | None
    error_event: dict[str, Any] | None


def _thread(row: dict[str, Any]) -> ThreadRow:
    waiting = None
    if row["waiting_id"] is not None:
        waiting = WaitingRun(
            id=row["waiting_id"],
            message=row["waiting_message"],
            interrupt=row["waiting_interrupt"],
            checkpoint_id=row["waiting_checkpoint_id"],
            expires_at=row["waiting_expires_at"],
            created_at=row["waiting_created_at"],
            last_seq=row["waiting_last_seq"],
        )
    first = None
    if row.get("first_message_id") is not None:
        first = TranscriptRow(
            row["first_message_id"], "user", row["first_message"], None, row["first_message_at"]
        )
    return ThreadRow(
        id=row["id"],
        thread_row_id=row["thread_row_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"] or row["created_at"],
        metadata=row["metadata"] or {},
        checkpoint_id=row["checkpoint_id"],
        status=row["status"],
        waiting=waiting,
        first_message=first,
    )


async def get_thread(
    conn: AsyncConnection[Any], *, session_id: uuid.UUID, user_id: uuid.UUID
) -> ThreadRow | None:
    cur = await conn.execute(_GET_THREAD, {"id": session_id, "user_id": user_id})
    row = await cur.fetchone()
    return None if row is None else _thread(row)


async def search_threads(
    conn: AsyncConnection[Any],
    *,
    user_id: uuid.UUID,
    metadata: dict[str, Any],
    ids: list[uuid.UUID] | None,
    status: str | None,
    sort_by: str,
    descending: bool,
    limit: int,
    offset: int,
) -> list[ThreadRow]:
    """The user's threads whose metadata contains `metadata`, with their first message."""
    column = SORTS[sort_by]
    direction = "DESC" if descending else "ASC"
    order = f" ORDER BY found.{column} {direction}, found.id {direction}"
    query = _SEARCH + order + " LIMIT %(limit)s OFFSET %(offset)s"
    cur = await conn.execute(
        query,  # the order is one of SORTS, spliced in
        {
            "user_id": user_id,
            "metadata": json.dumps(metadata),
            "ids": ids,
            "status": status,
            "limit": limit,
            "offset": offset,
        },
    )
    return [_thread(row) for row in await cur.fetchall()]


async def transcript(
    conn: AsyncConnection[Any], *, thread_row_id: uuid.UUID, before: int | None, limit: int
) -> list[TranscriptRow]:
    """The last `limit` messages of the transcript (before message `before`), oldest first."""
    cur = await conn.execute(_TRANSCRIPT, {"thread_row_id": thread_row_id, "before": before, "limit": limit})
    return [TranscriptRow(**row) for row in reversed(await cur.fetchall())]


async def is_user_message(conn: AsyncConnection[Any], *, thread_row_id: uuid.UUID, message_id: int) -> bool:
    cur = await conn.execute(_IS_USER_MESSAGE, {"thread_row_id": thread_row_id, "id": message_id})
    return await cur.fetchone() is not None


async def create_thread(
    conn: AsyncConnection[Any],
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    name: str,
    metadata: dict[str, Any],
) -> bool:
    """A session (and its thread) under this id; False when the id is taken."""
    cur = await conn.execute(
        _CREATE,
        {
            "id": session_id,
            "thread_row_id": uuid.uuid4(),
            "user_id": user_id,
            "name": name,
            "metadata": json.dumps(metadata),
        },
    )
    return await cur.fetchone() is not None


async def prepare_run(
    conn: AsyncConnection[Any], *, session_id: uuid.UUID, user_id: uuid.UUID, merge: dict[str, Any]
) -> RunPlan | None:
    """Merge `merge` into the thread's metadata and read where it stands; None when not the user's."""
    cur = await conn.execute(_PREPARE_RUN, {"id": session_id, "user_id": user_id, "merge": json.dumps(merge)})
    row = await cur.fetchone()
    return None if row is None else RunPlan(**row)


async def list_runs(
    conn: AsyncConnection[Any],
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    statuses: list[str] | None,
    limit: int,
    offset: int,
) -> list[RunRow] | None:
    """The thread's runs, newest first, in these statuses; None when the thread is not the user's."""
    keys = {"id": session_id, "user_id": user_id, "statuses": statuses, "limit": limit, "offset": offset}
    cur = await conn.execute(_OWNED, keys)
    if await cur.fetchone() is None:
        return None
    cur = await conn.execute(_LIST_RUNS, keys)
    return [RunRow(**row) for row in await cur.fetchall()]


async def outcome(
    conn: AsyncConnection[Any], *, run_id: uuid.UUID, session_id: uuid.UUID, user_id: uuid.UUID
) -> Outcome | None:
    """The run's status, error code and last `error` event; None when there is no such run of the user."""
    cur = await conn.execute(_OUTCOME, {"run_id": run_id, "id": session_id, "user_id": user_id})
    row = await cur.fetchone()
    return None if row is None else Outcome(**row)


async def unfinished_runs(conn: AsyncConnection[Any], *, session_id: uuid.UUID) -> list[uuid.UUID]:
    """Runs queued, running or waiting for approval (the caller has checked the session is theirs)."""
    cur = await conn.execute(_UNFINISHED, {"id": session_id})
    return [row["id"] for row in await cur.fetchall()]


async def leased(conn: AsyncConnection[Any], *, session_id: uuid.UUID) -> bool:
    cur = await conn.execute(_LEASED, {"id": session_id})
    row = await cur.fetchone()
    return bool(row and row["leased"])
