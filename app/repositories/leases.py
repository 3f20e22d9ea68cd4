"""The per-thread run lease, all of its SQL. The rule is written once, here:

    a lease is live while  lease_expires_at > now()

`run_id` names the run holding it. The process running a turn pushes `lease_expires_at` forward every
third of the TTL (renew()); a process that dies stops renewing, and its threads are free again within
one TTL. The lease lives in the thread row, so it holds across every worker and replica, and no
connection is held while the model thinks.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def live(alias: str) -> str:
    """The rule, for a thread row under `alias`."""
    return f"({alias}.lease_expires_at IS NOT NULL AND {alias}.lease_expires_at > now())"


# Every admission check of a turn comes back from the statement that takes the lease: the user is
# active, the token's login is live, the session is theirs, the day's quota is not used up (a quota of
# 0 blocks), fewer turns than the limits run for the user and in total, and the thread is free. It also
# reads what the turn needs to know of the session (its placeholder name, its memory switch), so no
# turn reads the session again. The UPDATE re-checks the rule on the locked row, so two turns racing
# for one thread cannot both win. Two turns starting at the same instant may both pass a count: the
# limits can be exceeded by as many turns as race, never by more.
_TAKE = f"""
WITH u AS (
    SELECT u.id, u.is_active,
           coalesce(u.daily_message_quota, %(message_quota)s) AS message_quota,
           coalesce(u.daily_token_quota, %(token_quota)s) AS token_quota,
           EXISTS (SELECT 1 FROM auth_session a WHERE a.id = %(login_id)s AND a.user_id = u.id) AS login_live
    FROM "user" u WHERE u.id = %(user_id)s
), target AS (
    SELECT t.id, {live("t")} AS busy, s.name_is_default, s.memory_enabled
    FROM thread t JOIN session s ON s.id = t.session_id
    WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s
), used AS (
    SELECT d.messages, d.tokens FROM usage_daily d WHERE d.user_id = %(user_id)s AND d.day = %(day)s
), checks AS (
    SELECT u.is_active AS active, u.login_live,
           target.id AS thread_id,
           coalesce(target.busy, false) AS busy,
           coalesce(target.name_is_default, false) AS name_is_default,
           coalesce(target.memory_enabled, false) AS memory_enabled,
           u.message_quota, u.token_quota,
           coalesce(used.messages, 0) AS messages_used, coalesce(used.tokens, 0) AS tokens_used,
           (SELECT count(*) FROM (
               SELECT 1 FROM thread t JOIN session s ON s.id = t.session_id
               WHERE {live("t")} AND s.user_id = %(user_id)s LIMIT %(per_user)s) AS mine) AS mine,
           (SELECT count(*) FROM (
               SELECT 1 FROM thread t WHERE {live("t")} LIMIT %(total)s) AS everyone) AS running
    FROM u LEFT JOIN target ON true LEFT JOIN used ON true
), admitted AS (
    SELECT * FROM checks
    WHERE active AND login_live AND thread_id IS NOT NULL
      AND (message_quota IS NULL OR messages_used < message_quota)
      AND (token_quota IS NULL OR tokens_used < token_quota)
      AND mine < %(per_user)s AND running < %(total)s
), taken AS (
    UPDATE thread SET run_id = %(run_id)s, lease_expires_at = now() + %(ttl)s
    FROM admitted
    WHERE thread.id = admitted.thread_id AND NOT {live("thread")}
    RETURNING thread.id, thread.checkpoint_id
), started AS (
    -- A new turn is a new run row; a queued or interrupted run takes the lease under its own id.
    INSERT INTO run (id, session_id, user_id, login_id, source, status, message, multitask,
                     from_message_id, created_at, started_at)
    SELECT %(run_id)s, %(session_id)s, %(user_id)s, %(login_id)s, %(source)s, 'running', %(message)s,
           %(multitask)s, %(from_message_id)s, now(), now()
    FROM taken WHERE %(claim)s::text IS NULL
    RETURNING created_at, NULL::text AS resume_from
), claimed AS (
    UPDATE run SET status = 'running', started_at = coalesce(run.started_at, now()), interrupt = NULL,
        checkpoint_id = NULL, expires_at = NULL
    FROM taken
    WHERE %(claim)s::text IS NOT NULL AND run.id = %(run_id)s AND run.session_id = %(session_id)s
      AND run.status = %(claim)s
      AND NOT run.cancel_requested AND (run.expires_at IS NULL OR run.expires_at > now())
    RETURNING run.created_at, (SELECT r.checkpoint_id FROM run r WHERE r.id = %(run_id)s) AS resume_from
), run_row AS (
    SELECT * FROM started UNION ALL SELECT * FROM claimed
)
SELECT checks.*, taken.id IS NOT NULL AS taken, taken.checkpoint_id,
       (SELECT count(*) FROM run_row) > 0 AS run_started,
       (SELECT created_at FROM run_row) AS run_created_at,
       (SELECT resume_from FROM run_row) AS resume_from,
       (SELECT r.id FROM run r WHERE r.session_id = %(session_id)s AND r.status = 'interrupted'
          AND r.id <> %(run_id)s LIMIT 1) AS waiting_run_id
FROM checks LEFT JOIN taken ON true
"""  # noqa: S608 (the only interpolation is the rule above, a constant)

_RENEW = """
UPDATE thread SET lease_expires_at = now() + %(ttl)s
WHERE run_id = ANY(%(run_ids)s) AND lease_expires_at > now()
RETURNING run_id
"""

_RELEASE = """
UPDATE thread SET run_id = NULL, lease_expires_at = NULL
WHERE id = :thread_id AND run_id = :run_id
RETURNING id
"""

_TAKE_FOR_CHANGE = f"""
UPDATE thread SET run_id = :run_id, lease_expires_at = now() + :ttl
WHERE id = ANY(:thread_ids) AND NOT {live("thread")}
RETURNING id
"""  # noqa: S608 (the rule, a constant)

_THREADS_OF_USER = (
    "SELECT t.id FROM thread t JOIN session s ON s.id = t.session_id WHERE s.user_id = :user_id"
)


@dataclass(frozen=True)
class TurnLimits:
    """What a user may start; None quotas are unlimited (a user's own override still applies)."""

    message_quota: int | None
    token_quota: int | None
    per_user: int
    total: int


@dataclass(frozen=True)
class Admission:
    """What the lease statement found. `taken` is True when this run now holds the lease."""

    active: bool
    login_live: bool
    thread_id: uuid.UUID | None
    busy: bool
    message_quota: int | None
    token_quota: int | None
    messages_used: int
    tokens_used: int
    mine: int
    running: int
    taken: bool
    checkpoint_id: str | None
    name_is_default: bool  # the session still has its placeholder name: this turn's message names it
    memory_enabled: bool  # the session's switch: recall and learn memories in its turns
    run_started: bool  # the run row was inserted, or the claimed run moved to running
    run_created_at: datetime | None
    resume_from: str | None  # a claimed interrupted run's checkpoint
    waiting_run_id: uuid.UUID | None  # another run of the session waiting for approval


@dataclass(frozen=True)
class RunSpec:
    """The run a lease is taken for: a new row (`claim` None) or an existing one in status `claim`
    (a queued run: pending; a resumed one: interrupted)."""

    run_id: uuid.UUID
    source: str = "chat"
    message: str | None = None
    multitask: str = "reject"
    from_message_id: int | None = None
    claim: str | None = None


async def take(
    conn: AsyncConnection[Any],
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    login_id: uuid.UUID,
    run: RunSpec,
    ttl: timedelta,
    limits: TurnLimits,
    day: date,
) -> Admission | None:
    """One round trip: every check, and the lease when they pass. None when the user does not exist."""
    cur = await conn.execute(
        _TAKE,
        {
            "run_id": run.run_id,
            "source": run.source,
            "message": run.message,
            "multitask": run.multitask,
            "from_message_id": run.from_message_id,
            "claim": run.claim,
            "session_id": session_id,
            "user_id": user_id,
            "login_id": login_id,
            "ttl": ttl,
            "day": day,
            "message_quota": limits.message_quota,
            "token_quota": limits.token_quota,
            "per_user": limits.per_user,
            "total": limits.total,
        },
    )
    row = await cur.fetchone()
    return None if row is None else Admission(**row)


async def renew(conn: AsyncConnection[Any], run_ids: list[uuid.UUID], ttl: timedelta) -> set[uuid.UUID]:
    """Push the expiry of these runs' leases forward; the runs that still held theirs."""
    cur = await conn.execute(_RENEW, {"run_ids": run_ids, "ttl": ttl})
    return {row["run_id"] for row in await cur.fetchall()}


async def release(session: AsyncSession, *, thread_id: uuid.UUID, run_id: uuid.UUID) -> bool:
    """Release the lease if `run_id` still holds it; True when it did (the row stays locked until commit)."""
    result = await session.execute(text(_RELEASE), {"thread_id": thread_id, "run_id": run_id})
    return result.first() is not None


async def take_for_change(session: AsyncSession, thread_ids: list[uuid.UUID], ttl: timedelta) -> bool:
    """Lease these threads for a change made in this transaction (delete, clear); False when any of
    them is answering. The change then releases or removes them before the commit."""
    if not thread_ids:
        return True
    result = await session.execute(
        text(_TAKE_FOR_CHANGE), {"run_id": uuid.uuid4(), "ttl": ttl, "thread_ids": thread_ids}
    )
    return len(result.all()) == len(thread_ids)


async def threads_of_user(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    result = await session.execute(text(_THREADS_OF_USER), {"user_id": user_id})
    return [row[0] for row in result.all()]
