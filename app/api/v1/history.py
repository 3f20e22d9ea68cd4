"""A session's history: its completed turns, newest first, each with the id a fork starts from."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import CurrentUser, RuntimeDep
from app.api.limits import rate_limit
from app.schemas.history import HistoryPage, TurnRead
from app.services.chat import history

router = APIRouter(prefix="/sessions", tags=["runs"])


@router.get("/{session_id}/history", response_model=HistoryPage, dependencies=[rate_limit("api")])
async def list_history(
    session_id: uuid.UUID,
    user: CurrentUser,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="a turn_id: older turns only")
    ] = None,
) -> HistoryPage:
    """Completed turns, newest first. `POST .../runs` with `from_turn: <turn_id>` forks from the state
    before a turn: that turn and the ones after it leave the transcript once the fork completes. The
    last turn carries its LangGraph checkpoint id; older states are rebuilt from the transcript."""
    items, total = await history.list_turns(
        rt, user_id=user.id, session_id=session_id, limit=limit, before=before
    )
    return HistoryPage(
        items=[TurnRead.model_validate(t, from_attributes=True) for t in items],
        total=total,
        next_before=items[-1].turn_id if len(items) == limit else None,
    )
