"""Rate-limit counters shared by every worker, and each user's daily usage for quotas."""

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index
from sqlmodel import Field, SQLModel


class RateLimitCounter(SQLModel, table=True):
    """Hits of one limit by one client in the current and the previous window.

    UNLOGGED (see migration 0004): counters are worth a WAL write on every request to nobody, and
    losing them in a crash only forgives a minute of traffic.
    """

    __tablename__ = "rate_limit"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key: str = Field(primary_key=True, max_length=200)
    window_start: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    hits: int
    previous_hits: int


class DailyUsage(SQLModel, table=True):
    """Messages and tokens of one user on one UTC day, counted as turns complete."""

    __tablename__ = "usage_daily"
    # The admin overview counts today's rows. A turn updates its row in place (the day never
    # changes), so this index is written once per user and day, not on every turn.
    __table_args__ = (Index("ix_usage_daily_day", "day"),)

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    day: date = Field(primary_key=True)
    messages: int = 0
    tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
