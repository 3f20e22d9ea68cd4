"""Access and refresh tokens, both bound to a login session (one row of auth_session).

An access token is short-lived and checked against the database on every request; a refresh
token is valid once: refreshing rotates it, and presenting an already-used one revokes the login.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import structlog
from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.errors import UnauthorizedError
from app.models import User
from app.repositories import auth_sessions as logins_repo
from app.repositories import users as users_repo

log = structlog.get_logger(__name__)

ACCESS = "access"
REFRESH = "refresh"
_REQUIRED = ["sub", "sid", "jti", "iat", "exp", "type"]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    login_id: uuid.UUID  # the auth_session row the token belongs to
    token_id: uuid.UUID


def _encode(
    settings: Settings,
    *,
    kind: str,
    user_id: uuid.UUID,
    login_id: uuid.UUID,
    jti: uuid.UUID,
    now: datetime,
    expires_at: datetime,
) -> str:
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "sid": str(login_id),
        "jti": str(jti),
        "type": kind,
        "iat": now.timestamp(),
        "exp": expires_at,
    }
    return jwt.encode(claims, settings.jwt_secret_key.get_secret_value(), algorithm=settings.jwt_algorithm)


def decode(token: str, settings: Settings, *, kind: str) -> TokenClaims:
    """Signature, algorithm, expiry and type; whether its login and user are still valid is the
    caller's to check."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret_key.get_secret_value(),
            algorithms=[settings.jwt_algorithm],  # one algorithm only: no `none`, no confusion
            options={"require": _REQUIRED},
        )
        if claims["type"] != kind:
            raise UnauthorizedError("Invalid token type")
        return TokenClaims(
            user_id=uuid.UUID(claims["sub"]),
            login_id=uuid.UUID(claims["sid"]),
            token_id=uuid.UUID(claims["jti"]),
        )
    except jwt.ExpiredSignatureError as exc:
        raise UnauthorizedError("Token has expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError, AttributeError) as exc:
        raise UnauthorizedError("Invalid token") from exc


def _pair(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    login_id: uuid.UUID,
    refresh_jti: uuid.UUID,
    now: datetime,
    refresh_expires_at: datetime,
) -> TokenPair:
    access_expires_at = now + timedelta(minutes=settings.access_token_minutes)
    access = _encode(
        settings,
        kind=ACCESS,
        user_id=user_id,
        login_id=login_id,
        jti=uuid.uuid4(),
        now=now,
        expires_at=access_expires_at,
    )
    refresh = _encode(
        settings,
        kind=REFRESH,
        user_id=user_id,
        login_id=login_id,
        jti=refresh_jti,
        now=now,
        expires_at=refresh_expires_at,
    )
    return TokenPair(
        access, access_expires_at.replace(microsecond=0), refresh, refresh_expires_at.replace(microsecond=0)
    )


async def open_login(pool: AsyncConnectionPool, settings: Settings, user_id: uuid.UUID) -> TokenPair:
    """A new login session and its first pair of tokens."""
    now = datetime.now(UTC)
    login_id, jti = uuid.uuid4(), uuid.uuid4()
    expires_at = now + timedelta(days=settings.refresh_token_days)
    async with pool.connection() as conn:
        await logins_repo.create(
            conn, login_id=login_id, user_id=user_id, jti=jti, now=now, expires_at=expires_at
        )
    return _pair(
        settings, user_id=user_id, login_id=login_id, refresh_jti=jti, now=now, refresh_expires_at=expires_at
    )


async def refresh(pool: AsyncConnectionPool, settings: Settings, token: str) -> TokenPair:
    """Rotate: the presented refresh token is spent and a new pair is issued for the same login."""
    claims = decode(token, settings, kind=REFRESH)
    now = datetime.now(UTC)
    new_jti = uuid.uuid4()
    expires_at = now + timedelta(days=settings.refresh_token_days)
    async with pool.connection() as conn:
        rotated = await logins_repo.rotate(
            conn,
            login_id=claims.login_id,
            user_id=claims.user_id,
            jti=claims.token_id,
            new_jti=new_jti,
            expires_at=expires_at,
        )
        if not rotated and await logins_repo.revoke_if_reused(
            conn, login_id=claims.login_id, user_id=claims.user_id, jti=claims.token_id
        ):
            log.warning("auth.refresh_reused", user_id=str(claims.user_id), login_id=str(claims.login_id))
            raise UnauthorizedError("Refresh token was already used; this login has been revoked")
    if not rotated:
        raise UnauthorizedError("Token has been revoked")
    return _pair(
        settings,
        user_id=claims.user_id,
        login_id=claims.login_id,
        refresh_jti=new_jti,
        now=now,
        refresh_expires_at=expires_at,
    )


async def log_out(pool: AsyncConnectionPool, claims: TokenClaims, *, everywhere: bool = False) -> None:
    """Revoke the token's login (or every login of its user): their access tokens stop at once."""
    async with pool.connection() as conn:
        if everywhere:
            await logins_repo.revoke_all(conn, user_id=claims.user_id)
        else:
            await logins_repo.revoke(conn, login_id=claims.login_id, user_id=claims.user_id)


async def active_user(pool: AsyncConnectionPool, claims: TokenClaims) -> User:
    """The token's user, if it still exists and is active and the token's login is live; one pooled
    autocommit statement."""
    async with pool.connection() as conn:
        found = await users_repo.load_for_token(conn, claims.user_id, claims.login_id)
    if found is None or not found[0].is_active:
        raise UnauthorizedError("Invalid token")
    user, login_live = found
    if not login_live:
        raise UnauthorizedError("Token has been revoked")
    return user
