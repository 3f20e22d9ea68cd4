"""Daily quotas: which apply to a user, and when the day they count ends."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Protocol


@dataclass(frozen=True)
class Quotas:
    messages: int | None  # None: unlimited
    tokens: int | None


class Overrides(Protocol):
    """A user, or an admin's row of one: their own quotas, None where the default applies."""

    @property
    def daily_message_quota(self) -> int | None: ...
    @property
    def daily_token_quota(self) -> int | None: ...


def in_force(user: Overrides, *, messages: int | None, tokens: int | None) -> Quotas:
    """The user's own quotas where an admin set them, else the server's defaults given."""
    return Quotas(
        messages if user.daily_message_quota is None else user.daily_message_quota,
        tokens if user.daily_token_quota is None else user.daily_token_quota,
    )


def next_reset(now: datetime) -> datetime:
    """The start of the next UTC day, when the day's usage stops counting."""
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)
