"""Background runs: turns started with POST .../runs and followed on their streams to the end, and many
streams of runs that last, held open at once (the server's memory, first events, database work)."""

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from app.config import Settings
from scripts.bench.client import API, Client, Turn, User
from scripts.bench.load import Plan
from scripts.bench.probe import Probe
from scripts.bench.services import MAX_RUNS_PER_USER, MAX_RUNS_TOTAL
from scripts.bench.stats import memory_and_threads, summary

_POLL_SECONDS: float = Settings.model_fields["run_stream_poll_seconds"].default


async def background(client: Client, users: list[User], plan: Plan, probe: Probe) -> dict[str, Any]:
    """Each user starts a run and follows its stream to `done`, again and again, for `level_seconds`;
    then their memory jobs drain."""
    max_turns = int(plan.level_seconds * 1000 / plan.call_ms) + 2  # no run is faster than the fake
    turns: list[Turn] = []
    await client.connect(users)
    jobs0, cpu0, load0 = await probe.jobs(), probe.cpu(), probe.load_cpu()
    t0 = time.perf_counter()
    stop_at = t0 + plan.level_seconds

    async def run_until_stop(user: User) -> None:
        for _ in range(max_turns):
            if time.perf_counter() >= stop_at:
                return
            turns.append(await client.run_turn(user))

    await asyncio.gather(*(run_until_stop(u) for u in users))
    elapsed = time.perf_counter() - t0
    busy = {
        "server": (probe.cpu().server_s - cpu0.server_s) / elapsed,
        "load": (probe.load_cpu() - load0) / elapsed,
    }
    ok = [t for t in turns if t.ok]
    settled = await probe.settle(jobs0, len(ok), plan.backlog_s)
    cpu1 = probe.cpu()
    return {
        "busy_cores": busy,  # while the users ran: near 1 on one core is saturated
        "users": len(users),
        "turns": len(turns),
        "errors": len(turns) - len(ok),
        "statuses": sorted({t.status for t in turns}),
        "elapsed_s": elapsed,
        "turns_per_s": len(ok) / elapsed,
        "first_event_ms": summary([t.ttft_ms for t in ok if t.ttft_ms is not None]),
        "latency_ms": summary([t.ms for t in ok]),
        "server_cpu_ms": 1000 * (cpu1.server_s - cpu0.server_s) / max(1, len(ok)),
        **settled,
    }


class _Streams:
    """SSE streams held open until cancelled. At most OPENING wait for their first event at a time,
    each timed from its own GET: 1,000 connections opened in one burst would time this process's
    event loop (httpx spends milliseconds of CPU on each new connection), not the server."""

    OPENING = 32

    def __init__(self, http: httpx.AsyncClient, wanted: int) -> None:
        self.http, self.wanted = http, wanted
        self.first_ms: list[float] = []
        self.failures: list[str] = []
        self.ended = 0  # by the run's last event, before the phase closed them
        self.open = 0
        self.answered = asyncio.Event()  # each has had its first event, or failed
        self._opening = asyncio.Semaphore(self.OPENING)

    async def hold(self, user: User, sid: str, run_id: str) -> None:
        url = f"{API}/sessions/{sid}/runs/{run_id}/stream"
        await self._opening.acquire()
        t0, waiting, failure = time.perf_counter(), True, ""
        try:
            async with self.http.stream("GET", url, headers=user.headers) as r:
                if r.status_code != 200:
                    failure = str(r.status_code)
                    return
                self.open += 1
                try:
                    async for line in r.aiter_lines():
                        if line.startswith("data:") and waiting:
                            waiting = False
                            self.first_ms.append((time.perf_counter() - t0) * 1000)
                            self._answered()
                        elif line.startswith("event:") and line[6:].strip() in ("done", "error"):
                            self.ended += 1
                finally:
                    self.open -= 1
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
        finally:
            if waiting:
                if failure:
                    self.failures.append(failure)
                self._answered()

    def _answered(self) -> None:
        self._opening.release()
        if len(self.first_ms) + len(self.failures) >= self.wanted:
            self.answered.set()


async def open_streams(client: Client, users: list[User], plan: Plan, probe: Probe) -> dict[str, Any]:
    """`open_streams` SSE streams over `stream_runs` runs (MAX_RUNS_PER_USER a user), opened once each
    run has streamed its first tokens, held `stream_hold_s`, then closed and the runs cancelled.
    The server's RSS idle, with the runs alone and with the streams; each stream's time from its GET
    to its first event; the database's transactions (one per statement: the app's pool autocommits)
    and its CPU while the streams are held."""
    pid = probe.server_pid
    owners = [users[i // MAX_RUNS_PER_USER] for i in range(min(plan.stream_runs, MAX_RUNS_TOTAL))]
    gate = asyncio.Semaphore(8)

    async def gated(coro: Any) -> Any:
        async with gate:
            return await coro

    sessions = await asyncio.gather(*(gated(client.create_session(u)) for u in owners))
    idle = memory_and_threads(pid)
    pace_ms = round(plan.stream_run_s * 1000 / (plan.reply_words + 3))  # the fake's chunks, all paced

    async def start(user: User, sid: str) -> str | None:
        text = f"[pace:{pace_ms}] {user.next_message()}"
        r = await client.http.post(f"{API}/sessions/{sid}/runs", json={"message": text}, headers=user.headers)
        return str(r.json()["id"]) if r.status_code == 202 else None

    started = await asyncio.gather(*(gated(start(u, s)) for u, s in zip(owners, sessions, strict=True)))
    runs = [(u, s, r) for u, s, r in zip(owners, sessions, started, strict=True) if r is not None]
    if not runs:
        return {"failed": "no run started"}
    # Each run streams its first tokens: a stream opened now gets them at once, read from the table.
    await asyncio.sleep(2 * pace_ms / 1000 + 0.5)
    with_runs = memory_and_threads(pid)

    limits = httpx.Limits(max_connections=plan.open_streams + 8, max_keepalive_connections=0)
    timeout = httpx.Timeout(60.0, connect=30.0, pool=30.0)
    http = httpx.AsyncClient(
        base_url=client.http.base_url, limits=limits, timeout=timeout, trust_env=False, verify=False
    )
    streams = _Streams(http, plan.open_streams)

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(streams.hold(*runs[i % len(runs)])) for i in range(plan.open_streams)]
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(streams.answered.wait(), 60)
        ramp_s = time.perf_counter() - t0
        held, peak = streams.open, with_runs
        xact0, cpu0, h0 = await _transactions(probe.data_dir), probe.cpu(), time.perf_counter()
        while (now := time.perf_counter()) < h0 + plan.stream_hold_s:
            await asyncio.sleep(min(0.5, h0 + plan.stream_hold_s - now))
            held = min(held, streams.open)
            sample = memory_and_threads(pid)
            peak = sample if (sample["rss_mb"] or 0) > (peak["rss_mb"] or 0) else peak
        xact1, cpu1, hold_s = await _transactions(probe.data_dir), probe.cpu(), time.perf_counter() - h0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.aclose()
        await asyncio.gather(*(gated(_cancel(client, *run)) for run in runs))
        await _finished(client, runs)
    pg = None if cpu0.postgres_s is None or cpu1.postgres_s is None else cpu1.postgres_s - cpu0.postgres_s
    return {
        "streams": plan.open_streams,
        "runs": len(runs),
        "runs_refused": len(owners) - len(runs),
        "per_user": MAX_RUNS_PER_USER,
        "total": MAX_RUNS_TOTAL,
        "pace_ms": pace_ms,
        "ramp_s": ramp_s,
        "held": held,  # open through the whole hold
        "ended_early": streams.ended,
        "failures": len(streams.failures),
        "failure_kinds": sorted(set(streams.failures)),
        "first_event_ms": summary(streams.first_ms),
        "idle": idle,
        "with_runs": with_runs,
        "with_streams": peak,
        "hold_s": hold_s,
        "db_statements_per_s": None if xact0 is None or xact1 is None else (xact1 - xact0) / hold_s,
        "postgres_cores": None if pg is None else pg / hold_s,
        "server_cores": (cpu1.server_s - cpu0.server_s) / hold_s,
        # What the same streams cost when each polled for itself every RUN_STREAM_POLL_SECONDS.
        "per_stream_polling_per_s": plan.open_streams / _POLL_SECONDS,
    }


async def _cancel(client: Client, user: User, sid: str, run_id: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        await client.http.post(f"{API}/sessions/{sid}/runs/{run_id}/cancel", headers=user.headers)


async def _finished(client: Client, runs: list[tuple[User, str, str]], within: float = 15.0) -> None:
    """Until every run has ended (its lease freed for the next phase), at most `within` seconds."""
    left, deadline = list(runs), time.perf_counter() + within
    while left and time.perf_counter() < deadline:
        await asyncio.sleep(0.25)
        states = await asyncio.gather(
            *(client.http.get(f"{API}/sessions/{s}/runs/{r}", headers=u.headers) for u, s, r in left),
            return_exceptions=True,
        )
        left = [
            run
            for run, got in zip(left, states, strict=True)
            if not isinstance(got, httpx.Response)
            or got.status_code != 200
            or got.json()["status"] in ("pending", "running")
        ]


async def _transactions(data_dir: Path | None) -> float | None:
    """Transactions the embedded PostgreSQL has counted (each backend reports about every second)."""
    if data_dir is None:
        return None
    dsn = f"postgresql://postgres:@/postgres?host={data_dir / 'pgdata'}"
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            cur = await conn.execute("SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database")
            row = await cur.fetchone()
    except psycopg.Error:
        return None
    return float(row[0]) if row and row[0] is not None else None
