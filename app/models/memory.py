"""mem0's history and recent-message stores, kept in PostgreSQL instead of its default SQLite file.

The vectors themselves live in mem0's pgvector table (created at startup, its dimension follows the
embedder), which is why it is not a model here.
"""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, Text, func, text
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


class MemoryJob(SQLModel, table=True):
    """A user message waiting for fact extraction: written by the statement that records the turn.

    A consumer holds the row locked (FOR UPDATE SKIP LOCKED) while it works, so a consumer that dies
    frees its job at once. Deleting the user or the session deletes the job.
    """

    __tablename__ = "memory_job"
    __table_args__ = (
        Index("ix_memory_job_ready", "run_after", "id", postgresql_where=text("failed_at IS NULL")),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    session_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("session.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    text: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False, server_default="0"))
    run_after: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )
    failed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )
