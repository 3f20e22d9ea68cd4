"""History schemas: a session's completed turns."""

from datetime import datetime

from pydantic import BaseModel


class TurnRead(BaseModel):
    turn_id: int  # the turn's user message id; `from_turn` in POST .../runs forks before it
    message: str
    created_at: datetime
    reply_message_id: int | None
    reply: str | None
    checkpoint_id: str | None  # the LangGraph checkpoint after the turn (the last turn only)


class HistoryPage(BaseModel):
    items: list[TurnRead]
    total: int
    next_before: int | None  # pass as `before` for the next (older) page
