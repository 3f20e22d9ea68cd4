"""Chat session schemas."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

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


SEARCH_QUERY_CHARS = 200
# Blank queries are refused by the service, with a message of its own.
SearchQuery = Annotated[str, StringConstraints(max_length=SEARCH_QUERY_CHARS), AfterValidator(clean_text)]


class SearchHit(BaseModel):
    """A session title (message_id and role null) or a message matching a search; `snippet` is plain
    text around the matched words."""

    model_config = ConfigDict(from_attributes=True)

    session_id: uuid.UUID
    session_name: str
    message_id: int | None
    role: Literal["user", "assistant"] | None
    snippet: str
    created_at: datetime
