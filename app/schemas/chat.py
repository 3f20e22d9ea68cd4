"""Chat and transcript schemas."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import CleanStr
from app.schemas.feedback import FeedbackRead
from app.schemas.runs import InterruptRead


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Optional only with replace_last_turn, which then sends the replaced turn's message again.
    message: CleanStr | None = None
    # The turn replaces the session's last completed one (regenerate, or edit and resend); the old
    # turn's transcript is deleted only once the new one is recorded.
    replace_last_turn: bool = False
    # With replace_last_turn: the id of the user message of the turn the client shows as last. Another
    # client may have added a turn since: then 409 turn_changed rather than replacing one never seen.
    replaces_message_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    # Fork from any turn (its user message id, from .../history): it and the turns after it are replaced.
    from_turn: int | None = Field(default=None, ge=1, le=2**63 - 1)


class ToolCallRead(BaseModel):
    name: str
    args: dict[str, Any]
    result: str | None = None
    is_error: bool = False


class ChatResponse(BaseModel):
    run_id: uuid.UUID
    # interrupted: a tool call waits for approval (`interrupt`); answer it with POST .../runs/{run_id}/resume.
    status: Literal["success", "interrupted"] = "success"
    message_id: int | None
    reply: str
    tool_calls: list[ToolCallRead]
    input_tokens: int
    output_tokens: int
    interrupt: InterruptRead | None = None


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    role: Literal["user", "assistant"]
    content: str
    tool_calls: list[ToolCallRead] | None = None
    created_at: datetime
    feedback: FeedbackRead | None = None  # the caller's rating of an assistant message
