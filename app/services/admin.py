"""Admin use cases: find and inspect users, disable, reset, promote, delete; each action audited."""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import ConflictError, NotFoundError
from app.models import AuditAction, AuditLog, ChatSession, Role, User
from app.repositories import admin_stats as stats_repo
from app.repositories import admin_users as admin_repo
from app.repositories import audit as audit_repo
from app.repositories import auth_sessions as logins_repo
from app.repositories import sessions as sessions_repo
from app.repositories import usage as usage_repo
from app.repositories import users as users_repo
from app.repositories.admin_users import Usage, UserRow
from app.repositories.admin_users import UserFilter as UserFilter  # re-exported for the api layer
from app.services import auth as auth_service
from app.services import quotas
from app.services.api_events import ERROR, RATE_LIMITED
from app.services.sessions import Page

LAST_ADMIN = "This would leave no active admin: promote or enable another admin first."


@dataclass(frozen=True)
class Quota:
    messages_per_day: int | None  # in force: the user's override, else the server's default
    tokens_per_day: int | None
    messages_today: int
    tokens_today: int
    resets_at: datetime


@dataclass(frozen=True)
class Overview:
    users_total: int
    users_active_today: int  # users with a turn today (UTC)
    turns_today: int
    input_tokens_today: int
    output_tokens_today: int
    errors_last_hour: int  # 5xx responses and streams ended by such an error
    rate_limited_last_hour: int  # 429 responses: rate limits, quotas, login locks, stream caps
    generated_at: datetime


@dataclass(frozen=True)
class UserDetail:
    user: UserRow
    usage: Usage
    quota: Quota


async def _audit(
    session: AsyncSession, actor: User | None, action: AuditAction, target: User, **detail: Any
) -> None:
    # Flushed inside the action's own transaction: the action and its record commit or fail together.
    await audit_repo.add(
        session,
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else None,
        action=action.value,
        target_id=target.id,
        target_email=target.email,
        detail=detail,
    )


async def _target(session: AsyncSession, user_id: uuid.UUID, *, guard_last_admin: bool = False) -> User:
    """The user, row-locked; with `guard_last_admin`, refuses if they are the last active admin."""
    # The admins are locked before the target, always in this order, so concurrent changes
    # serialise instead of each seeing two admins and both removing one.
    admins = await admin_repo.lock_active_admins(session) if guard_last_admin else []
    user = await admin_repo.get_for_update(session, user_id)
    if user is None:
        raise NotFoundError("User not found")
    if guard_last_admin and admins == [user.id]:
        raise ConflictError(LAST_ADMIN)
    return user


async def overview(session: AsyncSession) -> Overview:
    """The service at a glance, from its own tables: today is the UTC day, the last hour the minutes
    counted since `generated_at` minus an hour (a worker writes its counts within a second or so)."""
    now = datetime.now(UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    totals = await stats_repo.totals(session, day=day_start.date(), day_start=day_start)
    events = await stats_repo.events_since(session, now - timedelta(hours=1))

    def counted(prefix: str) -> int:
        return sum(n for kind, n in events.items() if kind.startswith(prefix + "."))

    return Overview(
        **vars(totals),
        errors_last_hour=counted(ERROR),
        rate_limited_last_hour=counted(RATE_LIMITED),
        generated_at=now,
    )


async def list_users(
    session: AsyncSession,
    settings: Settings,
    *,
    filters: UserFilter,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> Page[UserRow]:
    items, total = await admin_repo.search(
        session,
        filters,
        sort=sort,
        descending=descending,
        limit=limit,
        offset=offset,
        refresh_lifetime=timedelta(days=settings.refresh_token_days),
    )
    return Page(items, total, limit, offset)


async def get_user(session: AsyncSession, settings: Settings, user_id: uuid.UUID) -> UserDetail:
    """The user's row as listed, their usage (overall and today, UTC) and their quotas in force."""
    user = await admin_repo.get_row(
        session, user_id, refresh_lifetime=timedelta(days=settings.refresh_token_days)
    )
    if user is None:
        raise NotFoundError("User not found")
    now = datetime.now(UTC)
    today = await usage_repo.on_day(session, user_id, now.date())
    in_force = quotas.in_force(
        user, messages=settings.quota_messages_per_day, tokens=settings.quota_tokens_per_day
    )
    quota = Quota(
        messages_per_day=in_force.messages,
        tokens_per_day=in_force.tokens,
        messages_today=today.messages,
        tokens_today=today.tokens,
        resets_at=quotas.next_reset(now),
    )
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return UserDetail(user, await admin_repo.usage(session, user_id, day_start=day_start), quota)


async def list_user_sessions(
    session: AsyncSession, *, user_id: uuid.UUID, limit: int, offset: int
) -> Page[ChatSession]:
    if await users_repo.get_by_id(session, user_id) is None:
        raise NotFoundError("User not found")
    items, total = await sessions_repo.list_for_user(session, user_id, limit=limit, offset=offset)
    return Page(items, total, limit, offset)


async def set_active(session: AsyncSession, *, actor: User, user_id: uuid.UUID, active: bool) -> User:
    """Enable or disable. Disabling revokes every login: the user's tokens fail on their next request
    and do not come back with a later enable."""
    user = await _target(session, user_id, guard_last_admin=not active)
    was_active = user.is_active
    user.is_active = active
    await admin_repo.save(session, user)
    if not active:
        await logins_repo.revoke_all_in(session, user.id)
    await _audit(
        session, actor, AuditAction.enabled if active else AuditAction.disabled, user, was_active=was_active
    )
    return user


async def reset_password(
    session: AsyncSession, settings: Settings, *, actor: User, user_id: uuid.UUID, password: str
) -> None:
    """Set a new password and revoke every login of the user, with all their tokens."""
    hashed = await asyncio.to_thread(auth_service.hash_password, password, rounds=settings.bcrypt_rounds)
    user = await _target(session, user_id)
    user.hashed_password = hashed
    await admin_repo.save(session, user)
    await logins_repo.revoke_all_in(session, user.id)
    await _audit(session, actor, AuditAction.password_reset, user)


async def set_quota(
    session: AsyncSession,
    *,
    actor: User,
    user_id: uuid.UUID,
    messages_per_day: int | None,
    tokens_per_day: int | None,
) -> User:
    """The user's own daily quotas; None returns them to the server's defaults."""
    user = await _target(session, user_id)
    previous = {"messages_per_day": user.daily_message_quota, "tokens_per_day": user.daily_token_quota}
    user.daily_message_quota = messages_per_day
    user.daily_token_quota = tokens_per_day
    await admin_repo.save(session, user)
    await _audit(
        session,
        actor,
        AuditAction.quota_changed,
        user,
        previous=previous,
        messages_per_day=messages_per_day,
        tokens_per_day=tokens_per_day,
    )
    return user


async def set_role(session: AsyncSession, *, actor: User, user_id: uuid.UUID, role: Role) -> User:
    user = await _target(session, user_id, guard_last_admin=role != Role.admin)
    previous = user.role
    user.role = role.value
    await admin_repo.save(session, user)
    await _audit(session, actor, AuditAction.role_changed, user, previous=previous, role=role.value)
    return user


async def delete_user(
    session: AsyncSession, *, actor: User, user_id: uuid.UUID, lease_ttl: timedelta
) -> list[uuid.UUID]:
    """Everything of theirs, as when they delete their own account; 409 while a session answers.
    The ids of the threads deleted."""
    user = await _target(session, user_id, guard_last_admin=True)
    await _audit(session, actor, AuditAction.deleted, user)
    return await auth_service.delete_account(session, user_id=user.id, lease_ttl=lease_ttl)


async def list_audit(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    target_id: uuid.UUID | None,
    action: AuditAction | None,
    limit: int,
    offset: int,
) -> Page[AuditLog]:
    items, total = await audit_repo.search(
        session,
        actor_id=actor_id,
        target_id=target_id,
        action=action.value if action else None,
        limit=limit,
        offset=offset,
    )
    return Page(items, total, limit, offset)


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    return await users_repo.get_by_email(session, email)


async def create_admin(session: AsyncSession, settings: Settings, *, email: str, password: str) -> User:
    """A new active admin (the command line's way to make the first one)."""
    hashed = await asyncio.to_thread(auth_service.hash_password, password, rounds=settings.bcrypt_rounds)
    try:
        async with session.begin_nested():
            user = await users_repo.add(session, email=email, hashed_password=hashed, role=Role.admin.value)
    except IntegrityError as exc:  # created meanwhile: running the command again promotes it
        raise ConflictError(
            "An account with this email was created meanwhile; run the command again"
        ) from exc
    await _audit(session, None, AuditAction.created, user, role=user.role, via="cli")
    return user


async def make_admin(session: AsyncSession, *, user_id: uuid.UUID) -> tuple[User, bool]:
    """Promote an existing user and enable them if disabled (a way back in after a lock-out).

    Returns the user and whether anything changed.
    """
    user = await _target(session, user_id)
    previous, was_active = user.role, user.is_active
    if previous == Role.admin and was_active:
        return user, False
    user.role, user.is_active = Role.admin.value, True
    await admin_repo.save(session, user)
    await _audit(
        session,
        None,
        AuditAction.role_changed,
        user,
        previous=previous,
        role=user.role,
        was_active=was_active,
        via="cli",
    )
    return user, True
