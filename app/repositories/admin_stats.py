"""SQL for the admin overview: counts over the whole service, each read from an index."""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Table, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiEventCount, DailyUsage, Message, User

_user: Table = User.__table__  # type: ignore[attr-defined]
_usage: Table = DailyUsage.__table__  # type: ignore[attr-defined]
_message: Table = Message.__table__  # type: ignore[attr-defined]
_events: Table = ApiEventCount.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Totals:
    users_total: int
    users_active_today: int
    turns_today: int
    input_tokens_today: int
    output_tokens_today: int


async def totals(session: AsyncSession, *, day: date, day_start: datetime) -> Totals:
    """Users, and today's turns and tokens: turns from the quota counters (usage_daily, by its day
    index), the input/output split from today's messages (message, by its BRIN index on created_at)."""
    users = select(func.count()).select_from(_user).scalar_subquery()
    usage = select(func.count(), func.coalesce(func.sum(_usage.c.messages), 0)).where(_usage.c.day == day)
    tokens = select(
        func.coalesce(func.sum(_message.c.input_tokens), 0),
        func.coalesce(func.sum(_message.c.output_tokens), 0),
    ).where(_message.c.created_at >= day_start)
    u, t = usage.subquery(), tokens.subquery()
    row = (await session.execute(select(users, *u.c, *t.c).select_from(u.join(t, true())))).one()
    return Totals(*(int(value) for value in row))


async def events_since(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Failed and refused requests per kind, in the minutes starting at or after `since`."""
    rows = await session.execute(
        select(_events.c.kind, func.sum(_events.c.count))
        .where(_events.c.bucket_start >= since)
        .group_by(_events.c.kind)
    )
    return {kind: int(n) for kind, n in rows.all()}
