"""Sign-up, log-in and access tokens."""

import asyncio
import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bcrypt
import jwt
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import ConflictError, ThreadBusyError, UnauthorizedError
from app.models import User
from app.repositories import checkpoints as checkpoints_repo
from app.repositories import threads as threads_repo
from app.repositories import users as users_repo

ACCESS = "access"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: datetime


def _prehash(password: str) -> bytes:
    # bcrypt reads at most 72 bytes; hashing first makes every character of a long password count.
    # surrogatepass: a login form may carry lone surrogates; they must fail to match, not crash.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())


def hash_password(password: str, *, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, hashed: str) -> bool:
    return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))


_dummy_hashes: dict[int, str] = {}


def _check_password(password: str, hashed: str | None, rounds: int) -> bool:
    """bcrypt check; for an unknown user, against a dummy hash of the same cost.

    Unknown emails pay for one bcrypt check too, so timing does not reveal who has an account.
    Runs in a worker thread (bcrypt holds the CPU for ~250 ms at 12 rounds).
    """
    if hashed is None:
        if rounds not in _dummy_hashes:
            _dummy_hashes[rounds] = hash_password(uuid.uuid4().hex, rounds=rounds)
        verify_password(password, _dummy_hashes[rounds])
        return False
    return verify_password(password, hashed)


async def register(session: AsyncSession, settings: Settings, *, email: str, password: str) -> User:
    # Hash before touching the database, so no connection waits on bcrypt.
    hashed = await asyncio.to_thread(hash_password, password, rounds=settings.bcrypt_rounds)
    if await users_repo.get_by_email(session, email) is not None:
        raise ConflictError("An account with this email already exists")
    try:
        async with session.begin_nested():
            return await users_repo.add(session, email=email, hashed_password=hashed)
    except IntegrityError as exc:  # a concurrent sign-up with the same email
        raise ConflictError("An account with this email already exists") from exc


async def authenticate(
    db: async_sessionmaker[AsyncSession], settings: Settings, *, email: str, password: str
) -> User:
    async with db() as session:  # closed before bcrypt runs: no connection waits on it
        user = await users_repo.get_by_email(session, email)
    hashed = user.hashed_password if user else None
    valid = await asyncio.to_thread(_check_password, password, hashed, settings.bcrypt_rounds)
    if user is None or not valid or not user.is_active:
        raise UnauthorizedError("Incorrect email or password")
    return user


def issue_access_token(user: User, settings: Settings) -> AccessToken:
    now = datetime.now(UTC)
    expires_at = now + timedelta(minutes=settings.access_token_minutes)
    # iat keeps its microseconds (a NumericDate may be fractional): a token issued just after a
    # password reset, within the same second, must still count as newer than the reset.
    claims = {
        "sub": str(user.id),
        "type": ACCESS,
        "iat": now.timestamp(),
        "exp": expires_at,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.jwt_secret_key.get_secret_value(), algorithm=settings.jwt_algorithm)
    return AccessToken(token=token, expires_at=expires_at.replace(microsecond=0))


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    issued_at: datetime | None  # None for a token without iat: older than any revocation


def access_claims(token: str, settings: Settings) -> TokenClaims:
    """The claims of a valid access token; whether its user may act is checked by the caller."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret_key.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            options={"require": ["sub", "exp", "type"]},
        )
        if claims["type"] != ACCESS:
            raise UnauthorizedError("Invalid token type")
        iat = claims.get("iat")  # PyJWT has checked it is a number and not in the future
        issued_at = None if iat is None else datetime.fromtimestamp(float(iat), UTC)
        return TokenClaims(uuid.UUID(claims["sub"]), issued_at)
    except jwt.ExpiredSignatureError as exc:
        raise UnauthorizedError("Token has expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError) as exc:
        raise UnauthorizedError("Invalid token") from exc


def is_revoked(user: User, issued_at: datetime | None) -> bool:
    if user.tokens_valid_after is None:
        return False
    return issued_at is None or issued_at < user.tokens_valid_after


async def active_user(pool: AsyncConnectionPool, user_id: uuid.UUID, *, issued_at: datetime | None) -> User:
    """The token's user, if it still exists, is active and has not revoked tokens issued at
    `issued_at`; one pooled autocommit statement by primary key."""
    async with pool.connection() as conn:
        user = await users_repo.load(conn, user_id)
    if user is None or not user.is_active:
        raise UnauthorizedError("Invalid token")
    if is_revoked(user, issued_at):
        raise UnauthorizedError("Token has been revoked")
    return user


async def delete_account(session: AsyncSession, *, user_id: uuid.UUID, stale_after: timedelta) -> None:
    """The user and everything of theirs: sessions, threads, transcript, LangGraph checkpoints.

    Refused while one of their sessions is answering, so no run writes checkpoints afterwards.
    """
    thread_ids = await threads_repo.lease_all_for_user(
        session, user_id, run_id=uuid.uuid4(), stale_after=stale_after
    )
    if thread_ids is None:
        raise ThreadBusyError()
    await checkpoints_repo.delete_for_threads(session, thread_ids)
    await users_repo.delete_by_id(session, user_id)
