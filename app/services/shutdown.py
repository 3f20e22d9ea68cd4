"""Graceful shutdown: no new turns, turns in flight finish within the grace, the rest are cut cleanly."""

import asyncio

import structlog

from app.runtime import Runtime

log = structlog.get_logger(__name__)


def cut_margin(grace: float) -> float:
    """Turns still running are cut this long before the grace ends, so their error reaches the client
    and their lease is released before the server stops waiting for them."""
    return min(2.0, grace / 4)


async def drain(rt: Runtime) -> None:
    rt.draining = True
    grace = rt.settings.shutdown_grace_seconds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace - cut_margin(grace)
    log.info("app.draining", turns=len(rt.runs), grace_seconds=grace)
    await wait_for_runs(rt, until=deadline)
    if rt.runs:
        log.warning("app.turns_cut", turns=len(rt.runs))
        for handle in list(rt.runs.values()):
            handle.cut_now()


async def wait_for_runs(rt: Runtime, *, until: float) -> None:
    """Until this process runs no turn, or the loop time `until`."""
    loop = asyncio.get_running_loop()
    # Polled: turns end on many paths, and shutdown is the one place that waits for them all.
    while rt.runs and loop.time() < until:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
