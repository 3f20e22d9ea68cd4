"""Back-off after failed log-ins, per account and per client address.

Past the threshold every further failure locks the key for twice as long as the one before, up
to a maximum; while locked, attempts are refused before any password is checked. Unknown emails
are counted exactly like real ones, so a lock reveals nothing about who has an account.
"""

import hashlib
import math
from datetime import timedelta

import structlog
from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.errors import LoginLockedError
from app.repositories import login_failures as failures_repo

log = structlog.get_logger(__name__)


def account_key(email: str) -> str:
    # Hashed: whatever a client typed as its email (any length, NUL bytes) makes a short, safe key,
    # and the table holds no addresses.
    digest = hashlib.sha256(email.lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"account:{digest}"


def address_key(address: str) -> str:
    return f"ip:{address}"


async def ensure_unlocked(pool: AsyncConnectionPool, *, email: str, address: str) -> None:
    async with pool.connection() as conn:
        seconds = await failures_repo.locked_for(conn, [account_key(email), address_key(address)])
    if seconds is not None:
        raise LoginLockedError(
            f"Too many failed log-in attempts; try again in {max(1, math.ceil(seconds))} seconds.",
            retry_after=seconds,
        )


def lock_duration(failures: int, threshold: int, settings: Settings) -> timedelta | None:
    if failures < threshold:
        return None
    doublings = min(failures - threshold, 30)  # 2**30 seconds is past any sensible maximum
    seconds = min(settings.login_lockout_seconds * 2**doublings, settings.login_lockout_max_seconds)
    return timedelta(seconds=seconds)


async def record_failure(pool: AsyncConnectionPool, settings: Settings, *, email: str, address: str) -> None:
    window = timedelta(seconds=settings.login_failure_window_seconds)
    keys = [
        (account_key(email), settings.login_max_failures),
        (address_key(address), settings.login_ip_max_failures),
    ]
    async with pool.connection() as conn:
        for key, threshold in keys:
            failures = await failures_repo.record(conn, key, window=window)
            duration = lock_duration(failures, threshold, settings)
            if duration is not None:
                await failures_repo.lock(conn, key, duration=duration)
                log.warning("auth.login_locked", key_kind=key.partition(":")[0], failures=failures)


async def clear_account(pool: AsyncConnectionPool, *, email: str) -> None:
    """After a successful log-in. The address keeps its count: one good password must not buy a
    guessing client a fresh allowance against other accounts."""
    async with pool.connection() as conn:
        await failures_repo.clear(conn, account_key(email))
