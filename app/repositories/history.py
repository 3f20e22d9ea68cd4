"""A session's completed turns, as the history lists them: all of their SQL."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

# Each user message with the reply that follows it; the thread's checkpoint pointer names the state
# after the last turn (the only one kept besides the state before it).
_TURNS = """
WITH t AS (
    SELECT t.id, t.checkpoint_id FROM thread t JOIN session s ON s.id = t.session_id
    WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
)
SELECT u.id AS turn_id, u.content AS message, u.created_at, a.id AS reply_message_id, a.content AS reply,
       CASE WHEN u.id = (SELECT max(id) FROM message m WHERE m.thread_id = t.id AND m.role = 'user')
            THEN t.checkpoint_id END AS checkpoint_id
FROM t JOIN message u ON u.thread_id = t.id AND u.role = 'user'
LEFT JOIN LATERAL (
    SELECT id, content FROM message a
    WHERE a.thread_id = t.id AND a.id > u.id AND a.role = 'assistant' ORDER BY a.id LIMIT 1
) a ON true
WHERE %(before)s::bigint IS NULL OR u.id < %(before)s::bigint
ORDER BY u.id DESC
LIMIT %(limit)s
"""

_OWNED = """
SELECT (SELECT count(*) FROM message m WHERE m.thread_id = t.id AND m.role = 'user') AS turns
FROM thread t JOIN session s ON s.id = t.session_id WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
"""


@dataclass(frozen=True)
class TurnRow:
    turn_id: int  # its user message's id: what a fork names (`from_turn`)
    message: str
    created_at: datetime
    reply_message_id: int | None
    reply: str | None
    checkpoint_id: str | None  # the LangGraph checkpoint after the turn, for the last turn only


async def turns(
    conn: AsyncConnection[Any], *, session_id: uuid.UUID, user_id: uuid.UUID, limit: int, before: int | None
) -> tuple[list[TurnRow], int] | None:
    """The session's turns, newest first, before turn `before`; and how many it has. None when the
    session is not the user's."""
    keys = {"session_id": session_id, "user_id": user_id, "limit": limit, "before": before}
    cur = await conn.execute(_OWNED, keys)
    owned = await cur.fetchone()
    if owned is None:
        return None
    cur = await conn.execute(_TURNS, keys)
    return [TurnRow(**row) for row in await cur.fetchall()], int(owned["turns"])
