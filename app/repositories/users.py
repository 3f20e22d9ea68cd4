"""SQL for users."""

import uuid
from typing import Any

from psycopg import AsyncConnection as PgConnection
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models import Role, User


async def get_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


_LOAD_FOR_TOKEN = """
SELECT id, email, hashed_password, is_active, role, daily_message_quota,
       daily_token_quota, created_at,
       EXISTS (SELECT 1 FROM auth_session a WHERE a.id = %(login_id)s AND a.user_id = u.id) AS login_live
FROM "user" u WHERE id = %(user_id)s
"""


async def load_for_token(
    conn: PgConnection[Any], user_id: uuid.UUID, login_id: uuid.UUID
) -> tuple[User, bool] | None:
    """A detached User by id, and whether the token's login is still live; on the autocommit
    psycopg pool, in one statement: it runs on every authenticated request."""
    cur = await conn.execute(_LOAD_FOR_TOKEN, {"user_id": user_id, "login_id": login_id})
    row = await cur.fetchone()
    if row is None:
        return None
    live = bool(row.pop("login_live"))
    return User.model_validate(row), live


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def add(
    session: AsyncSession, *, email: str, hashed_password: str, role: str = Role.user.value
) -> User:
    user = User(email=email, hashed_password=hashed_password, role=role)
    session.add(user)
    await session.flush()
    return user


async def delete_by_id(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete the user; sessions, threads and messages go by ON DELETE CASCADE."""
    await session.execute(delete(User).where(col(User.id) == user_id))
