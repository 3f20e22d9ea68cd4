"""The user table."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class Role(StrEnum):
    user = "user"
    admin = "admin"


class User(SQLModel, table=True):
    __tablename__ = "user"
    __table_args__ = (CheckConstraint("role IN ('user', 'admin')", name="ck_user_role"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    hashed_password: str = Field(max_length=128)
    is_active: bool = True
    role: str = Field(
        default=Role.user.value, max_length=16, sa_column_kwargs={"server_default": Role.user.value}
    )
    # Per-user overrides set by an admin; None means the server's default (QUOTA_*_PER_DAY).
    daily_message_quota: int | None = None
    daily_token_quota: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = created_at_field()
