"""SQL for managing users: search, usage, and the locks behind the last-admin rule."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuthSession, ChatSession, Message, Role, Thread, User

_user: Table = User.__table__  # type: ignore[attr-defined]
_session: Table = ChatSession.__table__  # type: ignore[attr-defined]
_thread: Table = Thread.__table__  # type: ignore[attr-defined]
_message: Table = Message.__table__  # type: ignore[attr-defined]
_login: Table = AuthSession.__table__  # type: ignore[attr-defined]


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
    last_message_at: datetime | None
    last_active_at: datetime | None

    @property
    def last_active(self) -> datetime | None:  # the API's older name for last_message_at
        return self.last_message_at


@dataclass(frozen=True)
class Usage:
    sessions: int
    messages: int
    input_tokens: int
    output_tokens: int
    input_tokens_today: int
    output_tokens_today: int


def _last_message() -> ColumnElement[Any]:
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


def _last_login(refresh_lifetime: timedelta) -> ColumnElement[Any]:
    # A login's expiry is set to now + the refresh lifetime when it is made and at every refresh,
    # so the latest expiry less that lifetime is the user's last log-in or refresh. Logins that
    # were revoked (log-out, password reset, disable) or expired are gone, and with them their time.
    return (
        select(func.max(_login.c.expires_at) - refresh_lifetime)
        .where(_login.c.user_id == _user.c.id)
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


def _rows(refresh_lifetime: timedelta) -> tuple[Select[Any], ColumnElement[Any]]:
    last_message = _last_message().label("last_message_at")
    last_active = func.greatest(last_message, _last_login(refresh_lifetime)).label("last_active_at")
    query: Select[Any] = select(
        _user.c.id,
        _user.c.email,
        _user.c.role,
        _user.c.is_active,
        _user.c.created_at,
        _user.c.daily_message_quota,
        _user.c.daily_token_quota,
        last_message,
        last_active,
    )
    return query, last_active


async def search(
    session: AsyncSession,
    f: UserFilter,
    *,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
    refresh_lifetime: timedelta,
) -> tuple[list[UserRow], int]:
    """A page of users and how many match: two statements, whatever the page size."""
    query, last_active = _rows(refresh_lifetime)
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
    page = query.where(*conditions).order_by(*ordering).limit(limit).offset(offset)
    rows = (await session.execute(page)).all()
    total = await session.execute(select(func.count()).select_from(_user).where(*conditions))
    return [UserRow(**row._mapping) for row in rows], int(total.scalar_one())


async def get_row(
    session: AsyncSession, user_id: uuid.UUID, *, refresh_lifetime: timedelta
) -> UserRow | None:
    query, _ = _rows(refresh_lifetime)
    row = (await session.execute(query.where(_user.c.id == user_id))).one_or_none()
    return UserRow(**row._mapping) if row else None


async def usage(session: AsyncSession, user_id: uuid.UUID, *, day_start: datetime) -> Usage:
    """Sessions, messages and tokens of the user, overall and since `day_start`: one pass over their
    messages (found by thread)."""
    sessions = (
        select(func.count()).select_from(_session).where(_session.c.user_id == user_id).scalar_subquery()
    )
    today = _message.c.created_at >= day_start
    input_tokens, output_tokens = func.sum(_message.c.input_tokens), func.sum(_message.c.output_tokens)
    row = (
        await session.execute(
            select(
                sessions.label("sessions"),
                func.count(_message.c.id).label("messages"),
                func.coalesce(input_tokens, 0).label("input_tokens"),
                func.coalesce(output_tokens, 0).label("output_tokens"),
                func.coalesce(input_tokens.filter(today), 0).label("input_tokens_today"),
                func.coalesce(output_tokens.filter(today), 0).label("output_tokens_today"),
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
