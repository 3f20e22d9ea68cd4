"""Admin request and response schemas."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.models import AuditAction, Role
from app.schemas.auth import Password, UserRead
from app.schemas.common import CleanStr, PageParams


def _utc_if_naive(value: datetime) -> datetime:
    # A bare "2026-01-01T00:00:00" would otherwise be read in the database session's time zone.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Instant = Annotated[datetime, AfterValidator(_utc_if_naive)]


UserSort = Literal[
    "created_at",
    "-created_at",
    "email",
    "-email",
    "last_active",
    "-last_active",
    "last_active_at",
    "-last_active_at",
]


class UserQuery(PageParams):
    email: CleanStr | None = Field(default=None, max_length=320, description="case-insensitive substring")
    role: Role | None = None
    is_active: bool | None = None
    created_after: Instant | None = Field(default=None, description="inclusive; UTC when no offset is given")
    created_before: Instant | None = Field(default=None, description="exclusive; UTC when no offset is given")
    sort: UserSort = Field(
        default="-created_at",
        description="a key, descending with a leading '-'; last_active sorts by last_active_at"
        " (users never active come last either way)",
    )
    order: Literal["asc", "desc"] | None = Field(
        default=None, description="the direction for a key without '-' (default asc); kept for older clients"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.created_after and self.created_before and self.created_after >= self.created_before:
            raise ValueError("created_after must be before created_before")
        if self.sort.startswith("-") and self.order == "asc":
            raise ValueError(f"sort={self.sort} is descending; it conflicts with order=asc")
        return self

    @property
    def sort_key(self) -> str:
        key = self.sort.removeprefix("-")
        return "last_active" if key == "last_active_at" else key

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-") or self.order == "desc"


class AuditQuery(PageParams):
    actor_id: uuid.UUID | None = None
    target_id: uuid.UUID | None = None
    action: AuditAction | None = None


class AdminUserRead(UserRead):
    last_active_at: datetime | None = Field(
        default=None,
        description="the latest of their last message and their last log-in or token refresh"
        " (among logins still live: a log-out or a revocation forgets its time); null: never",
    )
    last_message_at: datetime | None = Field(default=None, description="time of their latest message")
    last_active: datetime | None = Field(
        default=None, deprecated=True, description="the same as last_message_at; use last_active_at"
    )
    daily_message_quota: int | None = Field(default=None, description="override; null: the server's default")
    daily_token_quota: int | None = Field(default=None, description="override; null: the server's default")


class UsageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sessions: int
    messages: int = Field(description="transcript messages, the user's and the agent's")
    input_tokens: int
    output_tokens: int
    input_tokens_today: int = Field(description="today, UTC")
    output_tokens_today: int = Field(description="today, UTC")


class QuotaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    messages_per_day: int | None = Field(description="in force (override or default); null: unlimited")
    tokens_per_day: int | None = Field(description="in force (override or default); null: unlimited")
    messages_today: int
    tokens_today: int
    resets_at: datetime


class AdminUserDetail(AdminUserRead):
    usage: UsageRead
    quota: QuotaRead


class AdminOverview(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    users_total: int
    users_active_today: int = Field(description="users with at least one turn today (UTC)")
    turns_today: int = Field(description="completed turns today (UTC), as counted for the quotas")
    input_tokens_today: int
    output_tokens_today: int
    errors_last_hour: int = Field(description="5xx responses, and streams ended by such an error")
    rate_limited_last_hour: int = Field(
        description="429 responses: rate limits, daily quotas, login locks, concurrent-stream caps"
    )
    generated_at: datetime


class QuotaUpdate(BaseModel):
    """Both fields are required; null returns that quota to the server's default."""

    messages_per_day: int | None = Field(ge=0, le=1_000_000_000)
    tokens_per_day: int | None = Field(ge=0, le=10**15)


class AdminSessionRead(BaseModel):
    """A user's session as an admin sees it: when, not what. Its name is left out, since a session is
    named from its first message unless the user renames it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    memory_enabled: bool
    created_at: datetime
    updated_at: datetime


class RoleUpdate(BaseModel):
    role: Role


class PasswordReset(BaseModel):
    password: Password


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_id: uuid.UUID | None = Field(
        description="null when the command line acted, or the actor is deleted"
    )
    actor_email: str | None
    action: AuditAction
    target_id: uuid.UUID | None
    target_email: str | None
    detail: dict[str, Any]
    created_at: datetime
