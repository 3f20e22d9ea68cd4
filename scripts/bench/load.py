"""The measured phases: the fake alone, one user's turns with the CPU they cost, concurrent users, one
long thread, and a soak for memory and threads."""

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI, DefaultAioHttpClient

from scripts.bench.client import Client, Turn, User
from scripts.bench.probe import Probe
from scripts.bench.services import MAX_RUNS_PER_USER
from scripts.bench.stats import memory_and_threads, summary


@dataclass(frozen=True)
class Plan:
    """Counts and durations of one run."""

    # The fake: 45 ms, then a chunk every 5 ms (role, 20 words, finish, usage): the first token at 50 ms,
    # the 20th at 145 ms. A non-streamed reply takes as long as the whole stream.
    latency_ms: float = 45.0
    token_delay_ms: float = 5.0
    reply_words: int = 20
    calib_requests: int = 20
    warmup_turns: int = 4
    seq_turns: int = 100  # one user, plain turns; as many streamed
    levels: tuple[int, ...] = (1, 10, 50, 100)
    level_seconds: float = 8.0
    settle_s: float = 30.0  # at most, for the memory jobs of a CPU measurement
    backlog_s: float = 60.0  # at most, for the jobs a level of users left queued
    far_turn: int = 200
    window: int = 10
    soak_users: int = 10
    soak_turns: int = 1000
    memory_per_user: int = 10_000  # one user's memories, in a table of memory_per_user * memory_users
    memory_users: int = 5
    memory_rounds: int = 200
    run_users: int = 50  # background runs: each user starts one and follows it to the end, for level_seconds
    open_streams: int = 1000  # SSE streams of runs held open at once...
    stream_runs: int = 200  # ...spread over this many runs (MAX_RUNS_TOTAL), MAX_RUNS_PER_USER a user
    stream_hold_s: float = 10.0
    stream_run_s: float = 25.0  # how long those runs would last (the fake's pace); they are cancelled
    gunicorn: bool = True

    @property
    def users(self) -> int:
        """Accounts per run: one each for the chat, stream and long-thread phases, then the levels'
        (and the runs' phases')."""
        return 3 + max(*self.levels, self.run_users, -(-self.stream_runs // MAX_RUNS_PER_USER))

    @property
    def call_ms(self) -> float:
        return self.latency_ms + self.token_delay_ms * (self.reply_words + 3)

    @property
    def fake_ttft_ms(self) -> float:
        # The fake sends the role chunk, sleeps one token delay, then sends the first word.
        return self.latency_ms + self.token_delay_ms


QUICK = Plan(
    calib_requests=8,
    warmup_turns=2,
    seq_turns=20,
    levels=(1, 10, 50),
    level_seconds=3.0,
    far_turn=40,
    window=5,
    soak_users=5,
    soak_turns=150,
    memory_per_user=2_000,
    memory_users=3,
    memory_rounds=40,
    open_streams=200,
    stream_runs=50,
    stream_hold_s=4.0,
    stream_run_s=12.0,
)


def _per_turn(before: float | None, after: float | None, turns: int) -> float | None:
    return None if before is None or after is None else 1000 * (after - before) / max(1, turns)


def _ok(turns: list[Turn]) -> list[Turn]:
    return [t for t in turns if t.ok]


async def calibrate(llm_url: str, plan: Plan) -> dict[str, Any]:
    """The fake LLM alone, through the client stack the app uses (openai + httpx, keep-alive)."""
    http = DefaultAioHttpClient()  # as app/agent/openai_client.py
    llm = AsyncOpenAI(base_url=llm_url, api_key="not-needed", max_retries=0, timeout=30.0, http_client=http)
    plain: list[float] = []
    ttft: list[float] = []
    try:
        for i in range(plan.calib_requests + 1):  # the first round opens the connection: not counted
            messages: Any = [{"role": "user", "content": f"calibration turn {i}"}]
            t0 = time.perf_counter()
            await llm.chat.completions.create(model="fake-model", messages=messages)
            t1 = time.perf_counter()
            stream = await llm.chat.completions.create(
                model="fake-model", messages=messages, stream=True, stream_options={"include_usage": True}
            )
            first = None
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter()
            if i and first is not None:
                plain.append((t1 - t0) * 1000)
                ttft.append((first - t1) * 1000)
    finally:
        await llm.close()
    return {"plain_ms": summary(plain), "ttft_ms": summary(ttft)}


async def warmup(client: Client, user: User, plan: Plan) -> dict[str, Any]:
    turns = [await client.turn(user, stream=i % 2 == 1) for i in range(2 * plan.warmup_turns)]
    return {"turns": len(turns), "errors": len(turns) - len(_ok(turns))}


async def sequential(
    client: Client, user: User, plan: Plan, probe: Probe, *, stream: bool, fake_ms: float
) -> dict[str, Any]:
    """One user's turns, one after another; the server's CPU for them, their memory jobs included.

    `fake_ms` is the fake's own calibrated time (to the reply, or to the first content chunk).
    """
    idle = await probe.idle(plan.settle_s)
    jobs0, cpu0 = await probe.jobs(), probe.cpu()
    turns = [await client.turn(user, stream) for _ in range(plan.seq_turns)]
    ok = _ok(turns)
    settled = await probe.settle(jobs0, len(ok), plan.settle_s)
    cpu1 = probe.cpu()
    times = [t.ttft_ms or 0.0 for t in ok] if stream else [t.ms for t in ok]
    n = max(1, len(ok))
    return {
        "turns": len(turns),
        "errors": len(turns) - len(ok),
        "idle_before": idle,
        "latency_ms": summary([t.ms for t in ok]),
        "measured_ms": summary(times),
        "overhead_ms": summary([x - fake_ms for x in times]),
        "server_cpu_ms": 1000 * (cpu1.server_s - cpu0.server_s) / n,
        "postgres_cpu_ms": _per_turn(cpu0.postgres_s, cpu1.postgres_s, n),
        **settled,
    }


async def concurrent(client: Client, users: list[User], plan: Plan, probe: Probe) -> dict[str, Any]:
    """Each user alternates plain and streamed turns for `level_seconds`; then their jobs drain."""
    # Bounded by count as well as time: no turn is faster than the fake's own time.
    max_turns = int(plan.level_seconds * 1000 / plan.call_ms) + 2
    turns: list[Turn] = []
    await client.connect(users)
    jobs0, cpu0, load0 = await probe.jobs(), probe.cpu(), probe.load_cpu()
    t0 = time.perf_counter()
    stop_at = t0 + plan.level_seconds

    async def chat_until_stop(user: User, offset: int) -> None:
        for i in range(max_turns):
            if time.perf_counter() >= stop_at:
                return
            turns.append(await client.turn(user, stream=(i + offset) % 2 == 1))

    await asyncio.gather(*(chat_until_stop(u, k) for k, u in enumerate(users)))
    elapsed = time.perf_counter() - t0
    busy = {
        "server": (probe.cpu().server_s - cpu0.server_s) / elapsed,
        "load": (probe.load_cpu() - load0) / elapsed,
    }
    ok = _ok(turns)
    settled = await probe.settle(jobs0, len(ok), plan.backlog_s)
    cpu1 = probe.cpu()
    return {
        "busy_cores": busy,  # while the users chatted: near 1 on one core is saturated
        "users": len(users),
        "turns": len(turns),
        "errors": len(turns) - len(ok),
        "statuses": sorted({t.status for t in turns}),
        "elapsed_s": elapsed,
        "turns_per_s": len(ok) / elapsed,
        "latency_ms": summary([t.ms for t in ok]),
        "first_token_ms": summary([t.ttft_ms for t in ok if t.ttft_ms is not None]),  # the streamed ones
        "server_cpu_ms": 1000 * (cpu1.server_s - cpu0.server_s) / max(1, len(ok)),
        **settled,
    }


async def long_thread(client: Client, user: User, plan: Plan) -> dict[str, Any]:
    """Median latency of turns 1..window against a window around `far_turn`, in one session."""
    early = range(1, plan.window + 1)
    late = range(plan.far_turn - plan.window // 2, plan.far_turn - plan.window // 2 + plan.window)
    turns = {n: await client.turn(user, stream=False) for n in range(1, late.stop)}
    first = [turns[n].ms for n in early if turns[n].ok]
    last = [turns[n].ms for n in late if turns[n].ok]
    m1 = statistics.median(first) if first else None
    m2 = statistics.median(last) if last else None
    return {
        "turns": len(turns),
        "errors": sum(not t.ok for t in turns.values()),
        "early_turns": [early[0], early[-1]],
        "late_turns": [late[0], late[-1]],
        "early_median_ms": m1,
        "late_median_ms": m2,
        "ratio": m2 / m1 if m1 and m2 else None,
    }


async def soak(client: Client, users: list[User], plan: Plan, probe: Probe) -> dict[str, Any]:
    """The server process's RSS and threads before and after `soak_turns` turns (mixed, concurrent),
    each read once the memory jobs have drained, after a warm-up of the same shape."""

    async def rounds(count: int) -> list[Turn]:
        async def one(k: int, user: User) -> list[Turn]:
            return [await client.turn(user, stream=(i + k) % 2 == 1) for i in range(count)]

        jobs0 = await probe.jobs()
        out = [t for ts in await asyncio.gather(*(one(k, u) for k, u in enumerate(users))) for t in ts]
        await probe.settle(jobs0, len(_ok(out)), plan.backlog_s)
        return out

    await client.connect(users)
    await rounds(max(2, plan.soak_turns // len(users) // 10))
    start = memory_and_threads(probe.server_pid)
    t0 = time.perf_counter()
    turns = await rounds(plan.soak_turns // len(users))
    elapsed = time.perf_counter() - t0
    return {
        "turns": len(turns),
        "errors": len(turns) - len(_ok(turns)),
        "users": len(users),
        "elapsed_s": elapsed,
        "start": start,
        "end": memory_and_threads(probe.server_pid),
    }
