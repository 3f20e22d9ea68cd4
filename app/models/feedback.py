"""Users' ratings of assistant messages, and the anonymous counts kept when a user is deleted."""

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Text
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class Rating(StrEnum):
    up = "up"
    down = "down"


class Feedback(SQLModel, table=True):
    """One per user and message (the message's session is the user's own)."""

    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("rating IN ('up', 'down')", name="ck_feedback_rating"),)

    message_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("message.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True)
    )
    rating: str = Field(max_length=8)
    comment: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class FeedbackTally(SQLModel, table=True):
    """Ratings per day of the users deleted since: counts only, nothing that names anyone."""

    __tablename__ = "feedback_tally"
    __table_args__ = (CheckConstraint("rating IN ('up', 'down')", name="ck_feedback_tally_rating"),)

    day: date = Field(primary_key=True)
    rating: str = Field(primary_key=True, max_length=8)
    count: int = Field(sa_column=Column(BigInteger, nullable=False))
