"""Feedback on the agent's replies: a thumbs up or down with an optional comment, one per message."""

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFoundError, ValidationFailedError
from app.models import Feedback, Rating
from app.observability.tracing import Tracing
from app.repositories import feedback as feedback_repo
from app.repositories.feedback import RatedTurn, Target

log = structlog.get_logger(__name__)
_MESSAGE_ID = ("path", "message_id")


async def _target(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, message_id: int
) -> Target:
    found = await feedback_repo.target(session, user_id=user_id, session_id=session_id, message_id=message_id)
    if found is None:
        # Another user's session or message looks exactly like a missing one.
        raise NotFoundError("Message not found")
    if found.role != "assistant":
        raise ValidationFailedError("feedback can only be given on the assistant's messages", loc=_MESSAGE_ID)
    return found


def score_id(message_id: int, user_id: uuid.UUID) -> str:
    """The Langfuse score's id: the same for every rating of one message by one user."""
    return uuid.uuid5(user_id, f"feedback:{message_id}").hex


async def set_feedback(
    session: AsyncSession,
    tracing: Tracing | None,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    message_id: int,
    rating: str,
    comment: str | None,
) -> Feedback:
    """Create or replace the caller's feedback on one reply; scores the reply's trace when traced."""
    rating = Rating(rating)
    found = await _target(session, user_id=user_id, session_id=session_id, message_id=message_id)
    feedback = await feedback_repo.upsert(
        session,
        message_id=message_id,
        user_id=user_id,
        rating=rating.value,
        comment=comment,
        now=datetime.now(UTC),
    )
    if tracing is not None and found.trace_id is not None:
        tracing.score_feedback(
            trace_id=found.trace_id,
            score_id=score_id(message_id, user_id),
            up=rating is Rating.up,
            comment=comment,
        )
    log.info("feedback.saved", message_id=message_id, rating=rating.value)
    return feedback


async def delete_feedback(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, message_id: int
) -> None:
    """Idempotent. A score already sent to Langfuse stays there (its API has no batched delete)."""
    await _target(session, user_id=user_id, session_id=session_id, message_id=message_id)
    await feedback_repo.delete_one(session, message_id=message_id, user_id=user_id)


async def rated_turns(
    session: AsyncSession, *, since: datetime, rating: Rating | None, limit: int
) -> list[RatedTurn]:
    """What users rated since `since` (all ratings with None), each with its turn's user message."""
    return await feedback_repo.rated_turns(
        session, since=since, rating=rating.value if rating else None, limit=limit
    )
