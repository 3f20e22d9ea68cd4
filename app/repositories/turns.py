"""SQL that ends a chat turn: the transcript rows and the lease release in one statement.

One statement, so it needs no transaction around it (it runs in autocommit): the messages are
inserted only if this run still holds the lease, which the same statement releases.
"""

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_RECORD_TURN = text("""
WITH released AS (
    UPDATE thread
    SET run_id = NULL, run_started_at = NULL, checkpoint_id = COALESCE(:checkpoint_id, checkpoint_id)
    WHERE id = :thread_id AND run_id = :run_id
    RETURNING id
), inserted AS (
    INSERT INTO message (thread_id, role, content, tool_calls, input_tokens, output_tokens, created_at)
    SELECT released.id, v.role, v.content, CAST(v.tool_calls AS json), v.input_tokens, v.output_tokens, :now
    FROM released CROSS JOIN (VALUES
        (1, 'user', CAST(:user_text AS text), CAST(NULL AS text),
            CAST(NULL AS integer), CAST(NULL AS integer)),
        (2, 'assistant', :reply, :tool_calls, :input_tokens, :output_tokens)
    ) AS v (n, role, content, tool_calls, input_tokens, output_tokens)
    ORDER BY v.n
    RETURNING id
)
SELECT max(id) FROM inserted
""")


async def record_turn(
    conn: AsyncConnection,
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
    """Append the user message and the reply, release the lease, move the checkpoint pointer.

    Returns the reply's message id, or None when this run no longer holds the lease (the session
    was deleted or cleared meanwhile); then nothing was written.
    """
    result = await conn.execute(
        _RECORD_TURN,
        {
            "thread_id": thread_id,
            "run_id": run_id,
            "checkpoint_id": checkpoint_id,
            "user_text": user_text,
            "reply": reply,
            "tool_calls": json.dumps(tool_calls) if tool_calls else None,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "now": now,
        },
    )
    last_id = result.scalar_one_or_none()
    return None if last_id is None else int(last_id)
