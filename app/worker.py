"""`python -m app.worker`: a process that runs memory-extraction jobs and nothing else.

Scale it apart from the API (set MEMORY_JOBS_IN_PROCESS=false there so extraction leaves the request
cores). It stops on SIGTERM or SIGINT, letting jobs in progress finish within MEMORY_DRAIN_TIMEOUT.
"""

import asyncio
import signal
import sys

import structlog

from app.config import get_settings
from app.db.migrations import DatabaseSetupError
from app.observability.logging import configure_logging
from app.runtime import open_runtime
from app.services.memory_jobs import MemoryJobs

log = structlog.get_logger(__name__)


async def run() -> None:
    settings = get_settings()
    if not settings.memory_enabled:
        raise SystemExit("error: MEMORY_ENABLED is false: there are no memory jobs to run")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings) as rt:
        jobs = MemoryJobs(rt)
        jobs.start()
        log.info("worker.started", slots=settings.memory_workers)
        await stop.wait()
        log.info("worker.stopping")
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
