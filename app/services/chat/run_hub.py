"""Run streams and their hub: one poller per process for all of its open streams, so that a thousand
streams cost the database one statement a tick, not a thousand. Runs executing here wake theirs at once."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import structlog

from app.repositories import runs as runs_repo
from app.repositories.runs import EventRow
from app.runtime import Runtime

log = structlog.get_logger(__name__)

EVENTS_PER_READ = 500


@dataclass
class _Followed:
    """What this process knows of a run that its streams follow."""

    followers: int = 0
    seq: int = 0  # the highest seq known to be written (committed)
    finished: bool = False
    gone: bool = False
    # Set on news, and replaced: a waiter holds the one that was current when it began to wait.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def news(self, after: int) -> bool:
        return self.seq > after or self.finished or self.gone


class RunHub:
    """Followed runs by id. Anything that learns of a run's progress (the poller, a run of this
    process, a stream's own read) calls `advance`; it wakes the run's followers only on news."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._runs: dict[uuid.UUID, _Followed] = {}
        self._followed = asyncio.Event()  # set while anything is followed: the poller sleeps otherwise

    @property
    def followed(self) -> int:
        return len(self._runs)

    @contextlib.contextmanager
    def watch(self, run_id: uuid.UUID) -> Iterator[None]:
        run = self._runs.setdefault(run_id, _Followed())
        run.followers += 1
        self._followed.set()
        try:
            yield
        finally:
            run.followers -= 1
            if run.followers == 0:
                del self._runs[run_id]
                if not self._runs:
                    self._followed.clear()

    def known(self, run_id: uuid.UUID) -> int:
        run = self._runs.get(run_id)
        return 0 if run is None else run.seq

    def advance(
        self, run_id: uuid.UUID, seq: int, *, finished: bool = False, gone: bool = False, seen: bool = False
    ) -> None:
        """`seen`: `finished` was read from the run's row just now, so it also says a run is not
        finished any more (a run that waited for approval goes on when resumed)."""
        run = self._runs.get(run_id)
        if run is None:  # followed by no stream of this process
            return
        now_finished = finished if seen else run.finished or finished
        news = seq > run.seq or (now_finished and not run.finished) or (gone and not run.gone)
        run.seq, run.finished, run.gone = max(seq, run.seq), now_finished, run.gone or gone
        if not news:  # at most learnt that the run goes on: nothing for a waiter
            return
        woken, run.changed = run.changed, asyncio.Event()
        woken.set()

    async def wait(self, run_id: uuid.UUID, *, after: int, deadline: float) -> None:
        """Until the run (watched) has an event past `after`, finished or is gone, or the loop's
        clock reaches `deadline`."""
        run = self._runs[run_id]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while not run.news(after):
                    await run.changed.wait()

    async def poll(self) -> None:
        """Until cancelled: while anything is followed, one statement for all of it every
        RUN_STREAM_POLL_SECONDS; nothing while nothing is."""
        while True:
            await self._followed.wait()
            await asyncio.sleep(self._rt.settings.run_stream_poll_seconds)
            if not (ids := list(self._runs)):
                continue
            try:
                async with self._rt.db.pool.connection() as conn:
                    found = await runs_repo.progress(conn, ids)
            except Exception as exc:  # boundary: an outage must not stop the poller once it is over
                log.warning("run.hub_poll_failed", runs=len(ids), error_type=type(exc).__name__)
                continue
            for run_id in ids:
                if (row := found.get(run_id)) is None:
                    self.advance(run_id, 0, gone=True)
                else:
                    self.advance(run_id, row[1], finished=row[0] in runs_repo.STREAM_ENDS, seen=True)


def of(rt: Runtime) -> RunHub:
    """The process's hub, made on first use (nothing is started: the lifespan runs `poll`)."""
    if isinstance(rt.run_hub, RunHub):
        return rt.run_hub
    hub = RunHub(rt)
    rt.run_hub = hub
    return hub


def notify(rt: Runtime, run_id: uuid.UUID, seq: int, *, finished: bool = False) -> None:
    """A run of this process wrote its events up to `seq` (and its status, when `finished`)."""
    if rt.run_hub is not None:
        rt.run_hub.advance(run_id, seq, finished=finished)


async def poll(rt: Runtime) -> None:
    await of(rt).poll()


async def follow(rt: Runtime, *, run_id: uuid.UUID, after: int) -> AsyncIterator[EventRow]:
    """The run's events after seq `after`, then those it adds, until it has finished (or waits for
    approval) and all were sent, or RUN_STREAM_MAX_SECONDS passed. No connection is held between
    reads: in between, the stream waits on the hub, and reads again (once) when its run has news."""
    hub = of(rt)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.settings.run_stream_max_seconds
    with hub.watch(run_id):
        while True:
            known = hub.known(run_id)
            async with rt.db.pool.connection() as conn:
                status, batch = await runs_repo.events_after(
                    conn, run_id=run_id, after=after, limit=EVENTS_PER_READ
                )
            for event in batch:
                after = event.seq
                yield event
            finished = status in runs_repo.STREAM_ENDS  # ended, or waiting for a person
            # What it read, not `after`: a client may resume from a seq the run never reached.
            hub.advance(
                run_id, batch[-1].seq if batch else 0, finished=finished, gone=status is None, seen=True
            )
            if len(batch) == EVENTS_PER_READ:
                continue
            if status is None or finished or loop.time() >= deadline:
                return
            # Past what the hub knew before this read, too: a read that found less never spins.
            await hub.wait(run_id, after=max(after, known), deadline=deadline)
