"""What the server spent: CPU of its processes and of its database, and when its memory jobs are done."""

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scripts.bench.stats import tree_cpu

_METRICS = {
    "agent_memory_jobs_queued": "queued",
    "agent_memory_jobs_running": "running",
    "agent_memory_extraction_latency_seconds_count": "extractions",
    "agent_memory_extraction_failures_total": "failures",
}


@dataclass(frozen=True)
class Cpu:
    server_s: float  # the server's processes and threads: uvicorn, or gunicorn, its workers, app.worker
    postgres_s: float | None  # the embedded PostgreSQL's processes; None without one (the floor)


@dataclass(frozen=True)
class Jobs:
    queued: float
    running: float
    extractions: float  # attempts finished, failed or not: every completed turn queues one job
    failures: float


def postmaster_pid(data_dir: Path | None) -> int | None:
    try:
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0]) if data_dir else None
    except (OSError, ValueError, IndexError):
        return None


class Probe:
    """Readings of one running server; `http` reaches its /metrics (None for the floor, which has none)."""

    def __init__(
        self,
        server_pids: list[int],
        *,
        http: httpx.AsyncClient | None,
        data_dir: Path | None,
        memory: bool,
        fake_pid: int | None = None,
    ) -> None:
        self.server_pids = server_pids
        self.server_pid = server_pids[0]  # the API process: uvicorn, or gunicorn's master
        self.fake_pid = fake_pid
        self.http = http
        self.data_dir = data_dir
        self.memory = memory

    def cpu(self) -> Cpu:
        pg = postmaster_pid(self.data_dir)
        return Cpu(tree_cpu(self.server_pids, skip_comm="postgres"), tree_cpu([pg]) if pg else None)

    def load_cpu(self) -> float:
        """CPU seconds of the load side: this process and the fake LLM (their own core, when pinned)."""
        return time.process_time() + (tree_cpu([self.fake_pid]) if self.fake_pid else 0.0)

    async def jobs(self) -> Jobs | None:
        if self.http is None:
            return None
        with contextlib.suppress(httpx.HTTPError):
            r = await self.http.get("/metrics")
            if r.status_code == 200:
                values = dict.fromkeys(_METRICS.values(), 0.0)
                for line in r.text.splitlines():
                    name, _, value = line.partition(" ")
                    key = _METRICS.get(name.partition("{")[0])
                    if key is not None:  # gunicorn: one line per worker for some; they add up
                        values[key] += float(value.rsplit(" ", 1)[-1])
                return Jobs(**values)
        return None

    async def settle(self, since: Jobs | None, turns: int, limit_s: float) -> dict[str, Any]:
        """Wait until the memory jobs of `turns` completed turns have all run, at most `limit_s`.

        Counts finished extractions rather than reading agent_memory_jobs_queued: the queue gauge is
        published every few seconds, and waiting for it would add idle time to the CPU being measured.
        """
        t0 = time.perf_counter()
        if not self.memory or since is None:
            return {}
        while time.perf_counter() - t0 < limit_s:
            now = await self.jobs()
            if now is not None and now.running == 0 and now.extractions - since.extractions >= turns:
                return {
                    "drain_s": time.perf_counter() - t0,
                    "drained": True,
                    "extraction_failures": now.failures - since.failures,
                }
            await asyncio.sleep(0.1)
        return {"drain_s": time.perf_counter() - t0, "drained": False}

    async def idle(self, limit_s: float) -> bool:
        """No memory job waiting or running (the gauges may lag a few seconds), at most `limit_s`."""
        deadline = time.perf_counter() + limit_s
        while time.perf_counter() < deadline:
            now = await self.jobs()
            if now is None or (now.queued == 0 and now.running == 0):
                return True
            await asyncio.sleep(0.25)
        return False
