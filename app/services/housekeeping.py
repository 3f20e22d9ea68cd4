"""Deleting what expired: logins past their refresh lifetime, forgotten failed log-ins, idle
rate-limit counters, memory jobs that failed a week ago, request counts older than two days, the
events of runs finished RUN_EVENTS_RETENTION_HOURS ago. Every table stays the size of its live rows,
whatever clients send. Runs whose process stopped are marked failed here too."""

import asyncio
from datetime import timedelta

import structlog
from psycopg_pool import AsyncConnectionPool

from app.config import RATE_LIMIT_NAMES, Settings
from app.repositories import api_events as events_repo
from app.repositories import auth_sessions as logins_repo
from app.repositories import login_failures as failures_repo
from app.repositories import memory_jobs as jobs_repo
from app.repositories import rate_limits as limits_repo
from app.repositories import runs as runs_repo
from app.services.chat.watch import RUN_LOST_DETAIL

log = structlog.get_logger(__name__)
SWEEP_INTERVAL = 600.0  # seconds
FAILED_JOBS_KEPT = timedelta(days=7)  # long enough to look at, short enough to stay small
EVENT_COUNTS_KEPT = timedelta(days=2)  # the overview reads the last hour; a day more to look back on
ORPHAN_CONFIRM_SECONDS = 2.0  # a completed run writes its status within a statement of its lease's release


async def sweep(pool: AsyncConnectionPool, settings: Settings) -> None:
    # A counter is needed for two of its windows (the current and the previous one).
    longest = max(settings.rate(name).seconds for name in RATE_LIMIT_NAMES)
    async with pool.connection() as conn:
        logins = await logins_repo.delete_expired(conn)
        failures = await failures_repo.delete_stale(
            conn, window=timedelta(seconds=settings.login_failure_window_seconds)
        )
        counters = await limits_repo.delete_stale(conn, age=timedelta(seconds=2 * longest))
        jobs = await jobs_repo.delete_failed(conn, older_than=FAILED_JOBS_KEPT)
        events = await events_repo.delete_old(conn, age=EVENT_COUNTS_KEPT)
        run_events = await runs_repo.delete_old_events(
            conn, age=timedelta(hours=settings.run_events_retention_hours)
        )
        candidates = await runs_repo.orphan_candidates(conn)
    lost = 0
    if candidates:
        # A run whose lease is gone lost its process: it ends as an error, its stream told so. Checked
        # again after a pause, so that a run writing its final status right now is left alone.
        await asyncio.sleep(ORPHAN_CONFIRM_SECONDS)
        async with pool.connection() as conn:
            lost = await runs_repo.mark_orphans(conn, candidates, detail=RUN_LOST_DETAIL)
    if logins or failures or counters or jobs or events or lost or run_events:
        log.info(
            "housekeeping.swept",
            logins=logins,
            login_failures=failures,
            rate_counters=counters,
            failed_jobs=jobs,
            event_counts=events,
            runs_lost=lost,
            run_events=run_events,
        )


async def run(pool: AsyncConnectionPool, settings: Settings, *, interval: float = SWEEP_INTERVAL) -> None:
    """Sweep now and then every `interval` seconds until cancelled (at shutdown)."""
    while True:
        try:
            await sweep(pool, settings)
        except Exception:
            log.exception("housekeeping.failed")
        await asyncio.sleep(interval)
