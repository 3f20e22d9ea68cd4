"""A session's completed turns, with the ids a fork names."""

import uuid

from app.errors import NotFoundError
from app.repositories import history as history_repo
from app.repositories.history import TurnRow
from app.runtime import Runtime


async def list_turns(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, limit: int, before: int | None
) -> tuple[list[TurnRow], int]:
    async with rt.db.pool.connection() as conn:
        found = await history_repo.turns(
            conn, session_id=session_id, user_id=user_id, limit=limit, before=before
        )
    if found is None:
        raise NotFoundError("Session not found")
    return found
