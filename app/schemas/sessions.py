"""Chat session schemas."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.schemas.common import clean_text

# Built on plain str so the whitespace is stripped before the length is checked.
SessionName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(clean_text)
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
