"""SQL for managing users: search, usage, and the locks behind the last-admin rule."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ChatSession, Message, Role, Thread, User

_user: Table = User.__table__  # type: ignore[attr-defined]
_session: Table = ChatSession.__table__  # type: ignore[attr-defined]
_thread: Table = Thread.__table__  # type: ignore[attr-defined]
_message: Table = Message.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class UserFilter:
    email: str | None = None  # substring, case-insensitive
    role: str | None = None
    is_active: bool | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True)
class UserRow:
    id: uuid.UUID
    email: str
    role: str
    is_active: bool
    created_at: datetime
    daily_message_quota: int | None
    daily_token_quota: int | None
    last_active: datetime | None


@dataclass(frozen=True)
class Usage:
    sessions: int
    messages: int
    input_tokens: int
    output_tokens: int
    last_active: datetime | None


def _last_active() -> ColumnElement[Any]:
    # Per thread, the newest message by (thread_id, id): one index probe per thread, not a scan of
    # the user's whole transcript, so sorting a page by it stays affordable.
    newest = (
        select(_message.c.created_at)
        .where(_message.c.thread_id == _thread.c.id)
        .order_by(_message.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(func.max(newest))
        .select_from(_session.join(_thread, _thread.c.session_id == _session.c.id))
        .where(_session.c.user_id == _user.c.id)
        .scalar_subquery()
    )


def _conditions(f: UserFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.email:
        conditions.append(_user.c.email.icontains(f.email, autoescape=True))  # % and _ match literally
    if f.role is not None:
        conditions.append(_user.c.role == f.role)
    if f.is_active is not None:
        conditions.append(_user.c.is_active.is_(f.is_active))
    if f.created_after is not None:
        conditions.append(_user.c.created_at >= f.created_after)
    if f.created_before is not None:
        conditions.append(_user.c.created_at < f.created_before)
    return conditions


async def search(
    session: AsyncSession, f: UserFilter, *, sort: str, descending: bool, limit: int, offset: int
) -> tuple[list[UserRow], int]:
    last_active = _last_active().label("last_active")
    keys: dict[str, ColumnElement[Any]] = {
        "created_at": _user.c.created_at,
        "email": _user.c.email,
        "last_active": last_active,
    }
    key, tiebreak = keys[sort], _user.c.id  # KeyError for anything the schema did not whitelist
    ordering = (
        [key.desc().nulls_last(), tiebreak.desc()] if descending else [key.asc().nulls_last(), tiebreak]
    )
    conditions = _conditions(f)
    query: Select[Any] = (
        select(
            _user.c.id,
            _user.c.email,
            _user.c.role,
            _user.c.is_active,
            _user.c.created_at,
            _user.c.daily_message_quota,
            _user.c.daily_token_quota,
            last_active,
        )
        .where(*conditions)
        .order_by(*ordering)
        .limit(limit)
        .offset(offset)
    )
    rows = (await session.execute(query)).all()
    total = await session.execute(select(func.count()).select_from(_user).where(*conditions))
    return [UserRow(**row._mapping) for row in rows], int(total.scalar_one())


async def usage(session: AsyncSession, user_id: uuid.UUID) -> Usage:
    sessions = (
        select(func.count()).select_from(_session).where(_session.c.user_id == user_id).scalar_subquery()
    )
    row = (
        await session.execute(
            select(
                sessions.label("sessions"),
                func.count(_message.c.id).label("messages"),
                func.coalesce(func.sum(_message.c.input_tokens), 0).label("input_tokens"),
                func.coalesce(func.sum(_message.c.output_tokens), 0).label("output_tokens"),
                func.max(_message.c.created_at).label("last_active"),
            )
            .select_from(
                _session.join(_thread, _thread.c.session_id == _session.c.id).join(
                    _message, _message.c.thread_id == _thread.c.id
                )
            )
            .where(_session.c.user_id == user_id)
        )
    ).one()
    return Usage(**row._mapping)


async def lock_active_admins(session: AsyncSession) -> list[uuid.UUID]:
    """Lock every active admin row until the transaction ends, in id order (no deadlocks).

    Anything that could take away the last admin locks these first, so two such changes run one
    after the other and the second sees what the first did.
    """
    result = await session.execute(
        select(_user.c.id)
        .where(_user.c.role == Role.admin.value, _user.c.is_active.is_(True))
        .order_by(_user.c.id)
        .with_for_update()
    )
    return list(result.scalars())


async def get_for_update(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    # populate_existing: the row may already be in this session from before the lock was taken.
    result = await session.execute(
        select(User).where(_user.c.id == user_id).with_for_update().execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def save(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user
