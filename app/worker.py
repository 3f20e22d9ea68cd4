"""`python -m app.worker`: a process that runs memory-extraction jobs and queued runs (double
texting: app/services/chat/dispatch.py), and serves no requests.

Scale it apart from the API (set MEMORY_JOBS_IN_PROCESS=false there so extraction leaves the request
cores). It stops on SIGTERM or SIGINT, letting jobs in progress finish within MEMORY_DRAIN_TIMEOUT and
runs in progress within SHUTDOWN_GRACE_SECONDS.
"""

import asyncio
import signal
import sys

import structlog

from app.config import get_settings
from app.db.migrations import DatabaseSetupError
from app.observability.logging import configure_logging
from app.runtime import open_runtime
from app.services import shutdown
from app.services.chat import dispatch, leases, watch
from app.services.memory_jobs import MemoryJobs

log = structlog.get_logger(__name__)


async def run() -> None:
    settings = get_settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings) as rt:
        jobs = MemoryJobs(rt) if rt.memory is not None else None
        rt.memory_jobs = jobs
        if jobs is not None:
            jobs.start()
        loops = [
            asyncio.create_task(leases.keep_alive(rt)),
            asyncio.create_task(watch.watch_cancels(rt)),
            asyncio.create_task(watch.watch_lost(rt)),
            asyncio.create_task(dispatch.keep_dispatching(rt)),
        ]
        log.info("worker.started", slots=settings.memory_workers if jobs else 0, runs=True)
        await stop.wait()
        log.info("worker.stopping")
        loops[-1].cancel()  # no new runs
        await shutdown.drain(rt)
        await watch.wait_for_tasks(rt, within=5)
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if jobs is not None:
            await jobs.stop()
    log.info("worker.stopped")


def main() -> int:
    configure_logging(get_settings())
    try:
        asyncio.run(run())
    except DatabaseSetupError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
