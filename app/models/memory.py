"""mem0's history and recent-message stores, kept in PostgreSQL instead of its default SQLite file.

The vectors themselves live in mem0's pgvector table (created at startup, its dimension follows the
embedder), which is why it is not a model here.
"""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Text, func
from sqlmodel import Field, SQLModel


class MemoryHistory(SQLModel, table=True):
    __tablename__ = "memory_history"
    __table_args__ = (Index("ix_memory_history_memory_id", "memory_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    memory_id: uuid.UUID
    # Deleting the user deletes their history: nothing of theirs outlives the account.
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    event: str = Field(max_length=16)
    old_memory: str | None = Field(default=None, sa_type=Text)
    new_memory: str | None = Field(default=None, sa_type=Text)
    created_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    updated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    is_deleted: bool = False
    actor_id: str | None = Field(default=None, sa_type=Text)
    role: str | None = Field(default=None, sa_type=Text)


class MemoryMessage(SQLModel, table=True):
    """The last few messages mem0 shows its extraction prompt, per user."""

    __tablename__ = "memory_message"
    __table_args__ = (Index("ix_memory_message_user_id_id", "user_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False))
    role: str | None = Field(default=None, sa_type=Text)
    content: str | None = Field(default=None, sa_type=Text)
    name: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )
