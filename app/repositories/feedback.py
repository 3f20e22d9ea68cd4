"""SQL for feedback on assistant messages, and the anonymous tally kept of a deleted user's."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import Feedback


@dataclass(frozen=True)
class Target:
    role: str
    trace_id: str | None


_TARGET = """
SELECT m.role, m.trace_id
FROM message m JOIN thread t ON t.id = m.thread_id JOIN session s ON s.id = t.session_id
WHERE m.id = :message_id AND s.id = :session_id AND s.user_id = :user_id
FOR KEY SHARE OF m
"""
# FOR KEY SHARE: a regenerate or a deletion in another tab waits for this transaction rather than
# removing the message between this check and the insert (a foreign-key error, a 500).

# The day of each rating and how many, added to what earlier deletions left.
_FOLD = """
INSERT INTO feedback_tally (day, rating, count)
SELECT (created_at AT TIME ZONE 'UTC')::date, rating, count(*) FROM feedback WHERE user_id = :user_id
GROUP BY 1, 2
ON CONFLICT (day, rating) DO UPDATE SET count = feedback_tally.count + EXCLUDED.count
"""


# Each rated reply with the user message of its turn: the last one before it in its thread.
_RATED_TURNS = """
SELECT f.message_id, f.rating, f.comment, f.updated_at, a.content AS reply, u.content AS user_text
FROM feedback f
JOIN message a ON a.id = f.message_id
CROSS JOIN LATERAL (
    SELECT m.content FROM message m
    WHERE m.thread_id = a.thread_id AND m.id < a.id AND m.role = 'user'
    ORDER BY m.id DESC LIMIT 1
) u
WHERE f.updated_at >= :since AND (CAST(:rating AS text) IS NULL OR f.rating = :rating)
ORDER BY f.updated_at, f.message_id
LIMIT :limit
"""


@dataclass(frozen=True)
class RatedTurn:
    message_id: int
    rating: str
    comment: str | None
    rated_at: datetime
    user_text: str
    reply: str


async def rated_turns(
    session: AsyncSession, *, since: datetime, rating: str | None, limit: int
) -> list[RatedTurn]:
    """Turns rated (or re-rated) since `since`, oldest first; every user's, for the evals."""
    result = await session.execute(text(_RATED_TURNS), {"since": since, "rating": rating, "limit": limit})
    return [
        RatedTurn(
            message_id=r.message_id,
            rating=r.rating,
            comment=r.comment,
            rated_at=r.updated_at,
            user_text=r.user_text,
            reply=r.reply,
        )
        for r in result
    ]


async def target(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, message_id: int
) -> Target | None:
    """The message, if it is in this session of this user."""
    result = await session.execute(
        text(_TARGET), {"message_id": message_id, "session_id": session_id, "user_id": user_id}
    )
    row = result.one_or_none()
    return Target(row.role, row.trace_id) if row else None


async def upsert(
    session: AsyncSession,
    *,
    message_id: int,
    user_id: uuid.UUID,
    rating: str,
    comment: str | None,
    now: datetime,
) -> Feedback:
    stmt = (
        insert(Feedback)
        .values(
            message_id=message_id,
            user_id=user_id,
            rating=rating,
            comment=comment,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=[col(Feedback.message_id), col(Feedback.user_id)],
            set_={"rating": rating, "comment": comment, "updated_at": now},
        )
        .returning(Feedback)
    )
    result = await session.execute(stmt, execution_options={"populate_existing": True})
    feedback: Feedback = result.scalar_one()
    return feedback


async def delete_one(session: AsyncSession, *, message_id: int, user_id: uuid.UUID) -> None:
    await session.execute(
        delete(Feedback).where(col(Feedback.message_id) == message_id, col(Feedback.user_id) == user_id)
    )


async def fold_into_tally(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Count the user's ratings into `feedback_tally`; their rows go with the user, by cascade."""
    await session.execute(text(_FOLD), {"user_id": user_id})


_OWN_PAGE = """
SELECT f.message_id, s.id AS session_id, f.rating, f.comment, f.created_at, f.updated_at
FROM feedback f
JOIN message m ON m.id = f.message_id
JOIN thread t ON t.id = m.thread_id
JOIN session s ON s.id = t.session_id
WHERE f.user_id = :user_id AND f.message_id > :after
ORDER BY f.message_id
LIMIT :limit
"""


async def page_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, after: int, limit: int
) -> list[dict[str, object]]:
    """The user's own ratings after message id `after`, in message order (the export pages them)."""
    rows = await session.execute(text(_OWN_PAGE), {"user_id": user_id, "after": after, "limit": limit})
    return [dict(row._mapping) for row in rows]
