"""The audit log of admin actions."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class AuditAction(StrEnum):
    created = "user.created"
    disabled = "user.disabled"
    enabled = "user.enabled"
    password_reset = "user.password_reset"
    role_changed = "user.role_changed"
    deleted = "user.deleted"
    quota_changed = "user.quota_changed"


class AuditLog(SQLModel, table=True):
    """Who did what to whom, and when.

    The actor is a foreign key that becomes NULL when that account is deleted; the target is not a
    foreign key at all, because deleting a user is itself audited. Both emails are copied so a row
    still reads after either account is gone.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_actor_id_id", "actor_id", "id"),
        Index("ix_audit_log_target_id_id", "target_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    actor_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    )
    actor_email: str | None = Field(default=None, max_length=320)
    action: str = Field(max_length=32)
    target_id: uuid.UUID | None = None
    target_email: str | None = Field(default=None, max_length=320)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = created_at_field()
