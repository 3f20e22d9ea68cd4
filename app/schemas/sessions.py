"""Chat session schemas."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.common import no_nul

# Built on plain str so the whitespace is stripped before the length is checked.
SessionName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(no_nul)
]


class SessionCreate(BaseModel):
    name: SessionName | None = None


class SessionUpdate(BaseModel):
    name: SessionName


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime


class SessionPage(BaseModel):
    items: list[SessionRead]
    total: int
    limit: int
    offset: int = Field(ge=0)
