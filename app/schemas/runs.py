"""Run schemas: a turn that outlives its request."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.schemas.common import CleanStr


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: CleanStr


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    session_id: uuid.UUID
    status: Literal["pending", "running", "success", "error", "cancelled"]
    message: str
    error: str | None  # the error code of a failed run (its stream's last event has the detail)
    reply_message_id: int | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
