"""The measured phases: the fake alone, one user, streaming, concurrent users, one long thread."""

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI

from scripts.bench.client import Client, Turn
from scripts.bench.stats import cpu_seconds, summary

LEVELS = (1, 10, 50)


@dataclass(frozen=True)
class Plan:
    """Counts and durations of one run."""

    latency_ms: float = 200.0
    token_delay_ms: float = 10.0
    calib_requests: int = 20
    warmup_turns: int = 5
    seq_turns: int = 100
    stream_turns: int = 50
    level_seconds: float = 10.0
    far_turn: int = 200
    window: int = 10
    memory_per_user: int = 10_000  # one user's memories, in a table of memory_per_user * memory_users
    memory_users: int = 10
    memory_rounds: int = 200
    memory_turns: int = 100  # sequential turns per memory configuration

    @property
    def fake_ttft_ms(self) -> float:
        # The fake sends the role chunk, sleeps one token delay, then sends the first word.
        return self.latency_ms + self.token_delay_ms


QUICK = Plan(
    calib_requests=8,
    warmup_turns=3,
    seq_turns=30,
    stream_turns=15,
    level_seconds=3.0,
    far_turn=60,
    window=6,
    memory_per_user=2_000,
    memory_users=5,
    memory_rounds=50,
    memory_turns=30,
)


def _ok_ms(turns: list[Turn]) -> list[float]:
    return [t.ms for t in turns if t.ok]


async def calibrate(llm_url: str, plan: Plan) -> dict[str, Any]:
    """The fake LLM alone, through the client stack the app uses (openai + httpx, keep-alive)."""
    llm = AsyncOpenAI(base_url=llm_url, api_key="not-needed", max_retries=0, timeout=30.0)
    plain: list[float] = []
    ttft: list[float] = []
    try:
        for i in range(plan.calib_requests + 1):  # the first round opens the connection: not counted
            messages: Any = [{"role": "user", "content": f"calibration turn {i}"}]
            t0 = time.perf_counter()
            await llm.chat.completions.create(model="fake-model", messages=messages)
            t1 = time.perf_counter()
            stream = await llm.chat.completions.create(model="fake-model", messages=messages, stream=True)
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


async def warmup(client: Client, plan: Plan) -> dict[str, Any]:
    user = await client.new_user()
    turns = []
    for i in range(plan.warmup_turns):
        turns.append(await client.chat(user, f"warm-up turn {i}"))
        turns.append(await client.chat_stream(user, f"warm-up stream {i}"))
    return {"turns": len(turns), "errors": len(turns) - len(_ok_ms(turns))}


async def sequential(
    client: Client, plan: Plan, app_pid: int, fake_ms: float, count: int | None = None
) -> dict[str, Any]:
    """One user, sequential non-streaming turns; `fake_ms` is the calibrated fake response time."""
    user = await client.new_user()
    cpu0 = cpu_seconds(app_pid)
    turns = [await client.chat(user, f"sequential turn {i}") for i in range(count or plan.seq_turns)]
    cpu = cpu_seconds(app_pid) - cpu0
    ok = _ok_ms(turns)
    return {
        "turns": len(turns),
        "errors": len(turns) - len(ok),
        "latency_ms": summary(ok),
        "overhead_ms": summary([x - fake_ms for x in ok]),
        "overhead_nominal_ms": summary([x - plan.latency_ms for x in ok]),
        "app_cpu_ms_per_turn": 1000 * cpu / max(1, len(turns)),
    }


async def streaming(client: Client, plan: Plan, fake_ttft_ms: float) -> dict[str, Any]:
    """One user, streamed turns: time to the first `token` event, less the fake's first content chunk."""
    user = await client.new_user()
    turns = [await client.chat_stream(user, f"streaming turn {i}") for i in range(plan.stream_turns)]
    ttft = [t.ttft_ms for t in turns if t.ok and t.ttft_ms is not None]
    return {
        "turns": len(turns),
        "errors": len(turns) - len(ttft),
        "ttft_ms": summary(ttft),
        "overhead_ms": summary([x - fake_ttft_ms for x in ttft]),
        "overhead_nominal_ms": summary([x - plan.fake_ttft_ms for x in ttft]),
    }


async def concurrent(client: Client, plan: Plan, users_n: int) -> dict[str, Any]:
    """`users_n` users, each with its own account and session, chatting for `level_seconds`."""
    users = await asyncio.gather(*(client.new_user() for _ in range(users_n)))
    # Bounded by count as well as time: no turn is faster than the fake's latency.
    max_turns = int(plan.level_seconds * 1000 / plan.latency_ms) + 2
    turns: list[Turn] = []
    t0 = time.perf_counter()
    stop_at = t0 + plan.level_seconds

    async def chat_until_stop(k: int) -> None:
        for i in range(max_turns):
            if time.perf_counter() >= stop_at:
                return
            turns.append(await client.chat(users[k], f"user {k} turn {i}"))

    await asyncio.gather(*(chat_until_stop(k) for k in range(users_n)))
    elapsed = time.perf_counter() - t0
    ok = _ok_ms(turns)
    return {
        "users": users_n,
        "turns": len(turns),
        "errors": len(turns) - len(ok),
        "statuses": sorted({t.status for t in turns}),
        "elapsed_s": elapsed,
        "turns_per_s": len(ok) / elapsed,
        "latency_ms": summary(ok),
    }


async def long_thread(client: Client, plan: Plan) -> dict[str, Any]:
    """Median latency of turns 1..window against a window around `far_turn`, in one session."""
    user = await client.new_user()
    early = range(1, plan.window + 1)
    late = range(plan.far_turn - plan.window // 2, plan.far_turn - plan.window // 2 + plan.window)
    turns = {n: await client.chat(user, f"long thread turn {n}") for n in range(1, late.stop)}
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
