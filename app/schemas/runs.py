"""Run schemas: a turn that outlives its request, queued, streamed, cancelled, or waiting for approval."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import CleanStr

Multitask = Literal["reject", "enqueue", "interrupt", "rollback"]
RunStatus = Literal["pending", "running", "interrupted", "success", "error", "cancelled"]
TURN_ID = Field(default=None, ge=1, le=2**63 - 1)


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Optional only with from_turn, which then sends that turn's message again (regenerate).
    message: CleanStr | None = None
    # Fork: start from the state before this turn (its user message id, from .../history); it and the
    # turns after it leave the transcript when the run completes.
    from_turn: int | None = TURN_ID
    # While the session answers another run: refuse (409), queue behind it, or stop it and then run,
    # keeping what it had finished (interrupt) or not (rollback).
    multitask: Multitask = "reject"
    # Stream the run's events in this response instead of answering 202 at once.
    stream: bool = False
    # With stream: a client that leaves cancels the run, or the run goes on and is stored.
    on_disconnect: Literal["cancel", "continue"] = "cancel"


class WaitingCall(BaseModel):
    id: str | None
    name: str
    args: dict[str, Any]


class InterruptRead(BaseModel):
    """The tool calls a run waits on, and until when it waits."""

    tool_calls: list[WaitingCall]
    expires_at: datetime | None


class RunRead(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    source: Literal["runs", "chat"]  # started by POST .../runs, or by a chat route
    status: RunStatus
    message: str | None  # None until a regenerate's run has started (then: the turn's message)
    multitask: Multitask
    from_turn: int | None
    # The error code of a failed run; for a cancelled one, why: none (cancelled), superseded (a newer
    # message interrupted it: what it finished is kept), rolled_back, approval_dropped, approval_expired.
    error: str | None
    reply_message_id: int | None
    cancel_requested: bool
    interrupt: InterruptRead | None  # while interrupted
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunResume(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "edit", "reject"]
    args: dict[str, Any] | None = None  # edit: the arguments to run the tool with instead
    reason: CleanStr | None = Field(default=None, max_length=2000)  # reject: passed on to the model
