"""The memory-extraction consumer: any process (API or `python -m app.worker`) runs jobs from the queue.

Jobs are durable rows (app/repositories/memory_jobs.py), written by the statement that records a turn,
so a crash, a deploy or a busy extractor loses none. Each of MEMORY_WORKERS slots claims one job at a
time; a failed attempt is retried with back-off, up to MEMORY_JOB_MAX_ATTEMPTS, then kept as failed.
"""

import asyncio
import contextlib
from datetime import timedelta

import anyio
import structlog

from app.observability import metrics
from app.repositories import memory_jobs as jobs_repo
from app.repositories.memory_jobs import Job
from app.runtime import Runtime

log = structlog.get_logger(__name__)
STATS_EVERY_SECONDS = 5.0  # at most; claims are renewed every third of the lease TTL
MAX_BACKOFF_SECONDS = 300.0


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2.0**attempts, MAX_BACKOFF_SECONDS))


class MemoryJobs:
    """The consumer of one process: started and stopped by its owner, with a drain at stop.

    One loop claims, and only while a slot is free; each claimed job runs in a task of its own. A
    queued job costs one claim statement, not one per slot: woken slots would all race for it.
    """

    def __init__(self, rt: Runtime) -> None:
        if rt.memory is None:
            raise ValueError("memory jobs need memory enabled")
        self._rt = rt
        self._memory = rt.memory
        s = rt.settings
        # A claim lasts one lease TTL and is renewed every third of it while the job runs: a consumer
        # that dies frees its jobs within the TTL, like its turns.
        self._claim_for = timedelta(seconds=s.lease_ttl_seconds)
        self._claimed: set[int] = set()
        self._stopping = asyncio.Event()
        self._free = asyncio.Semaphore(s.memory_workers)
        self._tasks: list[asyncio.Task[None]] = []  # the claiming loop and the reporter
        self._running: set[asyncio.Task[None]] = set()
        self._busy = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="memory-job-claims"),
            asyncio.create_task(self._report(), name="memory-job-stats"),
        ]

    async def stop(self) -> None:
        """Let jobs in progress finish within MEMORY_DRAIN_TIMEOUT; the rest go back to the queue."""
        self._stopping.set()
        self._rt.jobs_wake.set()
        if not self._tasks:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._rt.settings.memory_drain_timeout
        _, pending = await asyncio.wait(self._tasks, timeout=self._rt.settings.memory_drain_timeout)
        if self._running:  # no new job starts once the claiming loop has ended
            _, late = await asyncio.wait(self._running, timeout=max(0.0, deadline - loop.time()))
            pending |= late
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if pending:
            log.warning("memory.jobs_given_back", count=len(pending))

    async def idle(self, within: float = 30.0) -> None:
        """Wait until no job is ready and none is running here (tests, evals)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            if self._busy == 0:
                async with self._rt.db.pool.connection() as conn:
                    if await jobs_repo.ready_count(conn) == 0 and self._busy == 0:
                        return
            self._rt.jobs_wake.set()
            await asyncio.sleep(0.02)
        raise TimeoutError("memory jobs still running after the timeout")

    async def _claim_loop(self) -> None:
        wake = self._rt.jobs_wake
        poll = self._rt.settings.memory_job_poll_seconds
        while not self._stopping.is_set():
            await self._free.acquire()
            wake.clear()
            self._busy += 1  # from the claim on, so that idle() never sees a claimed job as done
            job = None
            try:
                if not self._stopping.is_set():
                    job = await self._claim()
            except Exception as exc:  # boundary: an outage must not end the consumer
                log.warning("memory.job_claim_failed", error_type=type(exc).__name__)
            if job is None:
                self._busy -= 1
                self._free.release()
            else:
                task = asyncio.create_task(self._run_in_slot(job), name=f"memory-job-{job.id}")
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            if (job is None or not job.more) and not self._stopping.is_set():
                # Nothing else is ready: the next job wakes us (this process's turns), or the poll
                # finds it (other processes' turns, retries coming due).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), poll)

    async def _run_in_slot(self, job: Job) -> None:
        try:
            await self._run(job)
        finally:
            self._busy -= 1
            self._free.release()

    async def _claim(self) -> Job | None:
        async with self._rt.db.pool.connection() as conn:
            return await jobs_repo.claim(conn, claim_for=self._claim_for)

    async def _run(self, job: Job) -> None:
        metrics.MEMORY_JOBS_RUNNING.inc()
        self._claimed.add(job.id)
        try:
            await self._memory.extract(job.user_id, job.session_id, job.text)
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                async with self._rt.db.pool.connection() as conn:
                    await jobs_repo.unclaim(conn, job.id)
            raise
        except Exception as exc:  # boundary: any failure of mem0, the model or the embedder
            await self._failed(job, exc)
        else:
            await self._settle(job)
        finally:
            self._claimed.discard(job.id)
            metrics.MEMORY_JOBS_RUNNING.dec()

    async def _settle(self, job: Job) -> None:
        try:
            async with self._rt.db.pool.connection() as conn:
                await jobs_repo.finish(conn, job.id)
        except Exception as exc:  # the job runs again after its claim ends: at least once, never lost
            log.warning("memory.job_finish_failed", job_id=job.id, error_type=type(exc).__name__)

    async def _failed(self, job: Job, exc: Exception) -> None:
        metrics.MEMORY_EXTRACTION_FAILURES.inc()
        error = type(exc).__name__
        try:
            async with self._rt.db.pool.connection() as conn:
                failed = await jobs_repo.retry_later(
                    conn,
                    job.id,
                    delay=backoff(job.attempts),
                    error=error,
                    max_attempts=self._rt.settings.memory_job_max_attempts,
                )
        except Exception as db_exc:
            log.warning("memory.job_retry_failed", job_id=job.id, error_type=type(db_exc).__name__)
            return
        log.warning(
            "memory.extraction_failed",
            job_id=job.id,
            user_id=str(job.user_id),
            attempt=job.attempts,
            gave_up=failed,
            error_type=error,
        )

    async def publish_stats(self) -> None:
        """Read the queue's numbers from PostgreSQL into the metrics."""
        async with self._rt.db.pool.connection() as conn:
            stats = await jobs_repo.stats(conn)
        metrics.MEMORY_JOBS_QUEUED.set(stats.queued)
        metrics.MEMORY_JOBS_FAILED.set(stats.failed)
        metrics.MEMORY_JOBS_OLDEST.set(stats.oldest_seconds)

    async def _report(self) -> None:
        """Renew this consumer's claims and publish the queue's numbers, until stopped."""
        every = min(STATS_EVERY_SECONDS, self._rt.renew_every)
        while not self._stopping.is_set():
            try:
                if self._claimed:
                    async with self._rt.db.pool.connection() as conn:
                        await jobs_repo.extend_claims(conn, list(self._claimed), claim_for=self._claim_for)
                await self.publish_stats()
            except Exception as exc:  # boundary: metrics wait for the database like everything else
                log.warning("memory.job_stats_failed", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), every)
