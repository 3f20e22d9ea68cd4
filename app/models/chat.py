"""Chat sessions, the threads that anchor LangGraph checkpoints, and the readable transcript."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class ChatSession(SQLModel, table=True):
    __tablename__ = "session"
    __table_args__ = (
        Index("ix_session_user_id_created_at", "user_id", "created_at"),
        # Full-text search over titles (app/repositories/search.py writes the same expression).
        Index("ix_session_name_fts", text("to_tsvector('simple', name)"), postgresql_using="gin"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False))
    name: str = Field(max_length=200)
    # Still the placeholder given at creation: the first completed turn names the session from its
    # message (app/repositories/turns.py). A rename by the user clears it for good.
    name_is_default: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    # Off: the session's turns neither recall the user's memories nor teach new ones.
    memory_enabled: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})
    # What a LangGraph client keeps on the thread (the agent protocol's `metadata`): searchable by it.
    thread_metadata: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Thread(SQLModel, table=True):
    """One per session; its id is the LangGraph thread_id.

    `checkpoint_id` points at the checkpoint of the last turn that completed; a failed turn
    never moves it, so the next turn forks from known-good state. `run_id` is the lease that
    allows one run at a time per thread across every process; it is live until `lease_expires_at`,
    which the running process keeps pushing forward (app/repositories/leases.py has the rule).
    """

    __tablename__ = "thread"
    # The runs in progress, counted on every turn for the concurrency limits.
    __table_args__ = (
        Index("ix_thread_running", "lease_expires_at", postgresql_where=text("run_id IS NOT NULL")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    session_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("session.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    checkpoint_id: str | None = Field(default=None, max_length=64)
    run_id: uuid.UUID | None = None
    lease_expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = created_at_field()


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_thread_id_id", "thread_id", "id"),
        # The admin overview's "today": rows arrive in time order, so a BRIN index finds the day's
        # rows in the table's last pages, at a fraction of a B-tree's cost on each insert.
        Index("ix_message_created_at", "created_at", postgresql_using="brin"),
        # Full-text search over messages (app/repositories/search.py writes the same expression).
        Index("ix_message_content_fts", text("to_tsvector('simple', content)"), postgresql_using="gin"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    thread_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("thread.id", ondelete="CASCADE"), nullable=False)
    )
    role: str = Field(max_length=16)
    content: str = Field(sa_column=Column(Text, nullable=False))
    tool_calls: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    input_tokens: int | None = None
    output_tokens: int | None = None
    # The Langfuse trace of the turn that wrote this reply (when tracing was on): feedback scores it.
    trace_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = created_at_field()
