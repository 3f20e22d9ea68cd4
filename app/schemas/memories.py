"""Long-term memory schemas."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.common import clean_text

# The service enforces MEMORY_MAX_CHARS; this is the hard ceiling on what is parsed at all.
MemoryText = Annotated[str, StringConstraints(min_length=1, max_length=10_000), AfterValidator(clean_text)]


class MemoryCreate(BaseModel):
    text: MemoryText


class MemoryUpdate(BaseModel):
    text: MemoryText


class MemoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    text: str
    created_at: datetime | None
    updated_at: datetime | None
    session_id: uuid.UUID | None = Field(
        description="The chat session whose message the memory was extracted from (or last revised"
        " from); null for memories added by hand, added before sessions were recorded, or whose"
        " session has since been deleted"
    )


class MemoryHit(MemoryRead):
    score: float = Field(description="Cosine similarity to the query, from -1 to 1")


class MemorySearchResults(BaseModel):
    items: list[MemoryHit]


class MemoryHistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event: str
    old_memory: str | None
    new_memory: str | None
    created_at: datetime | None
    updated_at: datetime | None


class MemoryHistory(BaseModel):
    memory_id: uuid.UUID
    items: list[MemoryHistoryEntry]


class MemoriesDeleted(BaseModel):
    deleted: int
