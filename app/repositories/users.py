"""SQL for users."""

import uuid

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import select

from app.models import User

_user: Table = User.__table__  # type: ignore[attr-defined]


async def get_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def load(conn: AsyncConnection, user_id: uuid.UUID) -> User | None:
    """A detached User by id, through Core: it runs on every authenticated request."""
    row = (await conn.execute(_user.select().where(_user.c.id == user_id))).one_or_none()
    return None if row is None else User.model_validate(dict(row._mapping))


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def add(session: AsyncSession, *, email: str, hashed_password: str) -> User:
    user = User(email=email, hashed_password=hashed_password)
    session.add(user)
    await session.flush()
    return user
