"""What every process watches while it runs turns: cancels asked on another process, runs whose
process died, approvals nobody answered; and, at shutdown, its background runs ending."""

import asyncio

import structlog

from app.repositories import runs as runs_repo
from app.runtime import Runtime
from app.services.chat import approvals

log = structlog.get_logger(__name__)

RUN_LOST_DETAIL = "The process running it stopped."
EXPIRY_EVERY = 10  # lost-run ticks between two looks for unanswered approvals


async def watch_cancels(rt: Runtime) -> None:
    """Stop this process's turns that another process was asked to stop, until cancelled: one
    statement per RUN_CANCEL_POLL_SECONDS, and only while this process runs turns."""
    while True:
        await asyncio.sleep(rt.settings.run_cancel_poll_seconds)
        if not rt.runs:
            continue
        try:
            async with rt.db.pool.connection() as conn:
                asked = await runs_repo.cancelled_among(conn, list(rt.runs))
        except Exception as exc:  # boundary: an outage must not stop the watch once it is over
            log.warning("run.cancel_watch_failed", error_type=type(exc).__name__)
            continue
        for run_id, mode in asked.items():
            if (mine := rt.runs.get(run_id)) is not None:
                mine.stop(mode)


async def mark_lost(rt: Runtime) -> int:
    """End as `run_lost` the runs whose process stopped renewing their lease; how many."""
    async with rt.db.pool.connection() as conn:
        lost = await runs_repo.expired(conn)
        if not lost:
            return 0
        return await runs_repo.mark_orphans(conn, lost, detail=RUN_LOST_DETAIL)


async def watch_lost(rt: Runtime) -> None:
    """Every RUN_LOST_POLL_SECONDS, one statement (on a partial index of unfinished runs): a run whose
    process died is marked lost at most the lease's TTL plus this interval after its last renewal.
    Every EXPIRY_EVERY ticks, the runs waiting for an approval past APPROVAL_TIMEOUT_SECONDS are dropped."""
    tick = 0
    while True:
        await asyncio.sleep(rt.settings.run_lost_poll_seconds)
        tick += 1
        try:
            if lost := await mark_lost(rt):
                log.warning("run.lost", runs=lost)
            if tick % EXPIRY_EVERY == 0 and (expired := await approvals.expire(rt)):
                log.info("run.approvals_expired", runs=expired)
        except Exception as exc:  # boundary: an outage must not stop the watch once it is over
            log.warning("run.lost_watch_failed", error_type=type(exc).__name__)


async def wait_for_tasks(rt: Runtime, *, within: float) -> None:
    """At shutdown, after the turns were cut: let each run write its final status, then cancel the rest."""
    tasks = [run.task for run in rt.background_runs.values()]
    if not tasks:
        return
    _, left = await asyncio.wait(tasks, timeout=within)
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=within)
