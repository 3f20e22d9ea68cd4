"""Login sessions (one refresh-token family each) and failed-login counters."""

import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, Index
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class AuthSession(SQLModel, table=True):
    """One login: the family of refresh tokens that rotate from it, and the access tokens issued to it.

    Only the newest refresh token of a family is valid (`refresh_jti`). Revoking a login deletes its
    row, and every token that names it stops working, access tokens included.
    """

    __tablename__ = "auth_session"
    __table_args__ = (Index("ix_auth_session_user_id", "user_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False))
    refresh_jti: uuid.UUID
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)


class LoginFailure(SQLModel, table=True):
    """Recent failed logins of one account or one client address, and the lock they earned."""

    __tablename__ = "login_failure"

    key: str = Field(primary_key=True, max_length=400)
    failures: int
    last_failed_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    locked_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
