"""Sign-up, log-in, password changes and account deletion."""

import asyncio
import base64
import hashlib
import uuid
from datetime import timedelta

import bcrypt
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import ConflictError, ForbiddenError, ThreadBusyError, UnauthorizedError
from app.models import User
from app.repositories import auth_sessions as logins_repo
from app.repositories import checkpoints as checkpoints_repo
from app.repositories import feedback as feedback_repo
from app.repositories import leases as leases_repo
from app.repositories import rate_limits as rate_limits_repo
from app.repositories import users as users_repo
from app.services import lockout, tokens
from app.services.tokens import TokenPair


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
    db: async_sessionmaker[AsyncSession], settings: Settings, *, email: str | None, password: str
) -> User:
    """`email` None: what was typed is no address at all; it fails like an unknown one, bcrypt included."""
    user = None
    if email is not None:
        async with db() as session:  # closed before bcrypt runs: no connection waits on it
            user = await users_repo.get_by_email(session, email)
    hashed = user.hashed_password if user else None
    valid = await asyncio.to_thread(_check_password, password, hashed, settings.bcrypt_rounds)
    if user is None or not valid or not user.is_active:
        raise UnauthorizedError("Incorrect email or password")
    return user


async def log_in(
    db: async_sessionmaker[AsyncSession],
    pool: AsyncConnectionPool,
    settings: Settings,
    *,
    username: str,
    email: str | None,
    password: str,
    address: str,
) -> TokenPair:
    """Check the lock, then the password; a failure counts against the account and the address.

    `username` is what the client typed, `email` its normalised address (None when it is none):
    the lock is keyed by the former, so it works alike for any string.
    """
    account = email or username
    await lockout.ensure_unlocked(pool, email=account, address=address)
    try:
        user = await authenticate(db, settings, email=email, password=password)
    except UnauthorizedError:
        await lockout.record_failure(pool, settings, email=account, address=address)
        raise
    await lockout.clear_account(pool, email=account)
    return await tokens.open_login(pool, settings, user.id)


async def change_password(
    db: async_sessionmaker[AsyncSession],
    pool: AsyncConnectionPool,
    settings: Settings,
    *,
    user: User,
    current: str,
    new: str,
    address: str,
) -> TokenPair:
    """Set a new password and revoke every login of the user; returns tokens for a fresh login.

    A wrong current password counts as a failed log-in: a stolen access token must not turn into
    an unlimited password oracle.
    """
    await lockout.ensure_unlocked(pool, email=user.email, address=address)
    if not await asyncio.to_thread(_check_password, current, user.hashed_password, settings.bcrypt_rounds):
        await lockout.record_failure(pool, settings, email=user.email, address=address)
        raise ForbiddenError("The current password is incorrect")
    hashed = await asyncio.to_thread(hash_password, new, rounds=settings.bcrypt_rounds)
    async with db() as session, session.begin():
        stored = await users_repo.get_by_id(session, user.id)
        if stored is None:
            raise UnauthorizedError("Invalid token")
        stored.hashed_password = hashed
        await logins_repo.revoke_all_in(session, user.id)
    return await tokens.open_login(pool, settings, user.id)


async def delete_account(
    session: AsyncSession, *, user_id: uuid.UUID, lease_ttl: timedelta
) -> list[uuid.UUID]:
    """The user and everything of theirs: sessions, threads, transcript, LangGraph checkpoints,
    memories, memory jobs and feedback (by cascade; feedback is first counted into the anonymous
    `feedback_tally`), rate-limit counters. The audit log keeps its copy of the
    email by design: it records what admins did.

    Refused while one of their sessions is answering, so no run writes checkpoints afterwards.
    """
    thread_ids = await leases_repo.threads_of_user(session, user_id)
    if not await leases_repo.take_for_change(session, thread_ids, lease_ttl):
        raise ThreadBusyError()
    await checkpoints_repo.delete_for_threads(session, thread_ids)
    await rate_limits_repo.delete_for_user(session, user_id)
    # Their ratings survive only as anonymous counts per day; the rows go with the user.
    await feedback_repo.fold_into_tally(session, user_id)
    await users_repo.delete_by_id(session, user_id)
    return thread_ids
