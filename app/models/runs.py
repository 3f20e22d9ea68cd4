"""Runs that outlive their request: one turn each, its status, and the events it produced."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class Run(SQLModel, table=True):
    """One turn under a lease: started by `POST .../runs` (`source` "runs", its events kept in
    `run_event`) or by the chat routes (`source` "chat", no events). Its id is its lease's id.

    status: pending (queued behind the session's current run) | running | interrupted (waiting for a
    person to approve a tool call; holds no lease) | success | error | cancelled. `cancel_requested`
    is set by any process, with `cancel_mode` (cancel, interrupt, rollback); the one running the run
    notices it (app/services/chat/runs.py).
    """

    __tablename__ = "run"
    __table_args__ = (
        Index("ix_run_session_id_created_at", "session_id", "created_at"),
        # The sweeper looks for unfinished runs whose process stopped: few rows, whatever the table's size.
        Index("ix_run_unfinished", "id", postgresql_where=text("status IN ('pending', 'running')")),
        # Queued and waiting runs of a session: the dispatcher's and a new turn's lookups.
        Index(
            "ix_run_waiting",
            "session_id",
            "created_at",
            postgresql_where=text("status IN ('pending', 'interrupted')"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    session_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("session.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    login_id: uuid.UUID | None = Field(default=None)  # the token's login: a queued run is admitted as it
    source: str = Field(sa_column=Column(Text, nullable=False, server_default=text("'runs'")))
    status: str = Field(sa_column=Column(Text, nullable=False))
    message: str | None = Field(default=None, sa_type=Text)  # None: the forked turn's message again
    multitask: str = Field(sa_column=Column(Text, nullable=False, server_default=text("'reject'")))
    from_message_id: int | None = Field(default=None, sa_type=BigInteger)  # fork: the turn it replaces
    error: str | None = Field(default=None, sa_type=Text)
    reply_message_id: int | None = Field(default=None, sa_type=BigInteger)
    cancel_requested: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    cancel_mode: str | None = Field(default=None, sa_type=Text)  # cancel | interrupt | rollback
    # While interrupted: the tool calls waiting for approval, the checkpoint to resume from, until when.
    interrupt: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    checkpoint_id: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_seq: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default=text("0")))
    created_at: datetime = created_at_field()
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class RunEvent(SQLModel, table=True):
    """One event of a run, as the SSE stream sends it; `seq` counts from 1 per run."""

    __tablename__ = "run_event"

    run_id: uuid.UUID = Field(sa_column=Column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True))
    seq: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    event: str = Field(sa_column=Column(Text, nullable=False))
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )
