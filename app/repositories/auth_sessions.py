"""SQL for login sessions (refresh-token families).

Single statements on the autocommit psycopg pool, like the chat path: the access check runs on
every authenticated request. Deleting a row is how a login is revoked.
"""

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import AuthSession

_CREATE = """
INSERT INTO auth_session (id, user_id, refresh_jti, created_at, expires_at)
VALUES (%(id)s, %(user_id)s, %(jti)s, %(now)s, %(expires_at)s)
"""

# The presented refresh token must be the family's newest, the login unexpired and the user active.
_ROTATE = """
UPDATE auth_session a SET refresh_jti = %(new_jti)s, expires_at = %(expires_at)s
FROM "user" u
WHERE a.id = %(id)s AND a.user_id = %(user_id)s AND a.refresh_jti = %(jti)s AND a.expires_at > now()
  AND u.id = a.user_id AND u.is_active
RETURNING a.id
"""

# A signed refresh token of this family that is not its newest has been used before: whoever holds
# it, the family is compromised.
_REVOKE_IF_REUSED = """
DELETE FROM auth_session WHERE id = %(id)s AND user_id = %(user_id)s AND refresh_jti <> %(jti)s RETURNING id
"""

_REVOKE = "DELETE FROM auth_session WHERE id = %(id)s AND user_id = %(user_id)s"
_REVOKE_ALL = "DELETE FROM auth_session WHERE user_id = %(user_id)s"
_DELETE_EXPIRED = "DELETE FROM auth_session WHERE expires_at < now()"


async def create(
    conn: AsyncConnection[Any],
    *,
    login_id: uuid.UUID,
    user_id: uuid.UUID,
    jti: uuid.UUID,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        _CREATE, {"id": login_id, "user_id": user_id, "jti": jti, "now": now, "expires_at": expires_at}
    )


async def rotate(
    conn: AsyncConnection[Any],
    *,
    login_id: uuid.UUID,
    user_id: uuid.UUID,
    jti: uuid.UUID,
    new_jti: uuid.UUID,
    expires_at: datetime,
) -> bool:
    cur = await conn.execute(
        _ROTATE,
        {"id": login_id, "user_id": user_id, "jti": jti, "new_jti": new_jti, "expires_at": expires_at},
    )
    return await cur.fetchone() is not None


async def revoke_if_reused(
    conn: AsyncConnection[Any], *, login_id: uuid.UUID, user_id: uuid.UUID, jti: uuid.UUID
) -> bool:
    cur = await conn.execute(_REVOKE_IF_REUSED, {"id": login_id, "user_id": user_id, "jti": jti})
    return await cur.fetchone() is not None


async def revoke(conn: AsyncConnection[Any], *, login_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await conn.execute(_REVOKE, {"id": login_id, "user_id": user_id})


async def revoke_all(conn: AsyncConnection[Any], *, user_id: uuid.UUID) -> None:
    await conn.execute(_REVOKE_ALL, {"user_id": user_id})


async def delete_expired(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute(_DELETE_EXPIRED)
    return cur.rowcount


async def revoke_all_in(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Within a SQLAlchemy transaction (an admin action or a password change)."""
    await session.execute(delete(AuthSession).where(col(AuthSession.user_id) == user_id))
