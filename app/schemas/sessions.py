"""Chat session schemas."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator

from app.schemas.common import clean_text

# Built on plain str so the whitespace is stripped before the length is checked.
SessionName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(clean_text)
]


class SessionCreate(BaseModel):
    # Without a name, the session is named from its first message once that is answered.
    name: SessionName | None = None
    memory_enabled: bool = True


class SessionUpdate(BaseModel):
    """Either field or both; a field left out (or null) is left as it is."""

    name: SessionName | None = None
    memory_enabled: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> "SessionUpdate":
        if self.name is None and self.memory_enabled is None:
            raise ValueError("give a name, memory_enabled, or both")
        return self


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    memory_enabled: bool
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
