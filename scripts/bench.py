"""End-to-end benchmark of the chat service against the fake LLM (loopback only).

    .venv/bin/python scripts/bench.py [--quick] [--json out.json]

Starts `tests.fake_llm` (fixed latency, so whatever is above it is the platform's own cost) and the
app (uvicorn, embedded PostgreSQL in a fresh temp dir under /tmp), then measures over keep-alive
httpx connections:

0. the fake LLM alone, through the same client stack the app uses (openai + httpx, keep-alive): its
   real response time is the "calibrated" baseline. The fake is run as `python -c <shim>` that sets
   TCP_NODELAY and then runs `tests.fake_llm` as __main__: as is, its separate header and body writes
   meet Nagle + delayed ACK and add ~40 ms (at random) to the configured latency (`--fake-as-is`);
1. one user, N sequential turns: platform overhead = latency - fake latency (p50/p99);
2. streaming: time to the first `event: token` minus the fake's time to first content chunk;
3. throughput at 1/10/50 concurrent users (own account and session each) for a fixed duration;
4. turn 1 vs turn 200 of one thread (median of a window around each);
5. app CPU seconds per turn, RSS and thread count at start and end.

Overhead targets subtract the configured latency (`--baseline calibrated`: the measured one); both
are printed. Both subprocesses are always stopped at the end (also on errors and Ctrl-C); every
loop is bounded in count and in time. The app's stderr goes to a log file that is kept and printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
API = "/api/v1"
PASSWORD = "Bench-pass-1!"
CLK_TCK = os.sysconf("SC_CLK_TCK")

FAKE_NODELAY_SHIM = (
    "import http.server, runpy; http.server.BaseHTTPRequestHandler.disable_nagle_algorithm = True; "
    "runpy.run_module('tests.fake_llm', run_name='__main__', alter_sys=True)"
)

# Targets (ms, turns/s, ratio).
T_OVERHEAD_P50 = 15.0
T_OVERHEAD_P99 = 50.0
T_TTFT_P50 = 20.0
T_CONC_USERS = 50
T_CONC_TPS = 40.0
T_GROWTH_RATIO = 1.2


# --------------------------------------------------------------------------- configuration


@dataclass
class Config:
    latency_ms: float = 200.0
    token_delay_ms: float = 10.0
    warmup_turns: int = 5
    calib_requests: int = 20
    seq_turns: int = 100
    stream_turns: int = 50
    levels: list[int] = field(default_factory=lambda: [1, 10, 50])
    level_seconds: float = 10.0
    far_turn: int = 200
    window: int = 10
    startup_timeout: float = 180.0
    request_timeout: float = 60.0
    hard_limit: float = 600.0  # the whole measurement run, seconds


def make_config(args: argparse.Namespace) -> Config:
    cfg = Config()
    if args.quick:
        cfg.warmup_turns = 3
        cfg.calib_requests = 8
        cfg.seq_turns = 30
        cfg.stream_turns = 15
        cfg.level_seconds = 3.0
        cfg.far_turn = 60
        cfg.window = 6
        cfg.hard_limit = 150.0
    for name in (
        "latency_ms",
        "token_delay_ms",
        "seq_turns",
        "stream_turns",
        "level_seconds",
        "far_turn",
        "window",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    if args.levels:
        cfg.levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    if cfg.window < 2 or cfg.far_turn <= cfg.window:
        raise SystemExit("--far-turn must be larger than --window, and --window at least 2")
    return cfg


# --------------------------------------------------------------------------- small helpers


def pct(values: list[float], q: float) -> float | None:
    """Percentile with linear interpolation (q in 0..100); None when there is no data."""
    if not values:
        return None
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values_ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(values_ms),
        "min": min(values_ms) if values_ms else None,
        "p50": pct(values_ms, 50),
        "p90": pct(values_ms, 90),
        "p99": pct(values_ms, 99),
        "max": max(values_ms) if values_ms else None,
        "mean": statistics.fmean(values_ms) if values_ms else None,
    }


def fmt(value: float | None, unit: str = "ms", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}{(' ' + unit) if unit else ''}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child before exec: SIGTERM it if the benchmark itself dies (even by SIGKILL).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def proc_cpu_seconds(pid: int) -> float | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_status(pid: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_mb": None, "threads": None}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    except OSError:
        pass
    return out


def host_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    parts = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    total = sum(parts)
    return total - parts[3] - parts[4], total


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def host_busy_pct(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    dt = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / dt if dt > 0 else None


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry.name))
    return kids


# --------------------------------------------------------------------------- processes


class Services:
    """The fake LLM and the app as subprocesses, with logs in a temp dir under /tmp."""

    def __init__(self, cfg: Config, keep_data: bool, fake_as_is: bool) -> None:
        self.cfg = cfg
        self.fake_as_is = fake_as_is
        self.keep_data = keep_data
        self.tmp = Path(tempfile.mkdtemp(prefix="agent-bench-", dir="/tmp"))
        self.data_dir = self.tmp / "data"
        self.app_log = self.tmp / "app.stderr.log"
        self.llm_log = self.tmp / "fake_llm.log"
        self.llm: subprocess.Popen[bytes] | None = None
        self.app: subprocess.Popen[bytes] | None = None
        self.llm_port = 0
        self.app_port = 0
        self.startup_seconds: float | None = None
        self._files: list[Any] = []

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.app_port}"

    def _spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self._files.append(fh)
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
            preexec_fn=_die_with_parent,
        )

    def start(self) -> None:
        base_env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "LLM_API_KEY", "OPENAI_API_KEY", "LLM_FALLBACK_MODELS"}
            and not k.lower().endswith("_proxy")
        }
        base_env["PYTHONUNBUFFERED"] = "1"

        self.llm_port = free_port()
        fake_args = [
            "--port",
            str(self.llm_port),
            "--latency-ms",
            str(self.cfg.latency_ms),
            "--token-delay-ms",
            str(self.cfg.token_delay_ms),
        ]
        # Default: the same module run with TCP_NODELAY. It sends headers and body in separate writes,
        # and with Nagle on the second waits for the client's delayed ACK (~40 ms on Linux).
        launcher = ["-m", "tests.fake_llm"] if self.fake_as_is else ["-c", FAKE_NODELAY_SHIM]
        self.llm = self._spawn([sys.executable, *launcher, *fake_args], base_env, self.llm_log)
        self._wait_http(f"http://{HOST}:{self.llm_port}/v1/models", self.llm, 20.0, self.llm_log, "fake LLM")

        self.app_port = free_port()
        app_env = dict(base_env)
        app_env.update(
            {
                "APP_ENV": "test",
                "BCRYPT_ROUNDS": "4",
                "DATA_DIR": str(self.data_dir),
                "LLM_BASE_URL": f"http://{HOST}:{self.llm_port}/v1",
                "LLM_MODEL": "fake-model",
                "PORT": str(self.app_port),
                "HOST": HOST,
            }
        )
        uvicorn = ROOT / ".venv" / "bin" / "uvicorn"
        t0 = time.perf_counter()
        self.app = self._spawn(
            [str(uvicorn), "app.main:create_app", "--factory", "--host", HOST, "--port", str(self.app_port)],
            app_env,
            self.app_log,
        )
        self._wait_http(f"{self.base_url}/health", self.app, self.cfg.startup_timeout, self.app_log, "app")
        self.startup_seconds = time.perf_counter() - t0

    @staticmethod
    def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path, name: str) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {proc.returncode} during start-up; "
                        f"log {log}:\n{tail(log, 40)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                time.sleep(0.2)
        raise RuntimeError(f"{name} not healthy at {url} after {timeout:.0f}s; log {log}:\n{tail(log, 40)}")

    def postmaster_pid(self) -> int | None:
        pidfile = self.data_dir / "pgdata" / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        return pid if str(self.data_dir) in cmdline else None

    def stop(self) -> None:
        for proc, grace in ((self.app, 30.0), (self.llm, 5.0)):
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(
                    signal.SIGTERM
                )  # uvicorn: graceful; lifespan closes pools and stops postgres
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        # The embedded postgres normally stops with the app; if it did not, stop exactly that one.
        pid = self.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)  # postgres "fast" shutdown
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for fh in self._files:
            with contextlib.suppress(Exception):
                fh.close()
        if not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- the client side


@dataclass
class Turn:
    ok: bool
    status: str  # "200", "409", "ReadTimeout", "bad_reply", ...
    latency_ms: float
    ttft_ms: float | None = None
    detail: str = ""


@dataclass
class User:
    headers: dict[str, str]
    session_id: str


class Bench:
    def __init__(self, cfg: Config, services: Services) -> None:
        self.cfg = cfg
        self.svc = services
        self.client: httpx.AsyncClient | None = None
        self.results: dict[str, Any] = {}
        self.error_samples: list[str] = []
        # Read-after-write misses during setup: the API answered 201 but the row was not visible yet.
        self.setup_races: Counter[str] = Counter()
        self.race_samples: list[str] = []
        # What the fake LLM alone takes as seen by the OpenAI client (measured), else its nominal timing.
        self.base_plain = cfg.latency_ms
        self.base_ttft = cfg.latency_ms + cfg.token_delay_ms  # role chunk, token_delay, then the first word
        self.base_stream_total: float | None = None

    # --- resources
    def app_cpu(self) -> float:
        assert self.svc.app is not None
        return proc_cpu_seconds(self.svc.app.pid) or 0.0

    def pg_cpu(self) -> float | None:
        """CPU of the embedded postgres (postmaster + backends alive now); approximate."""
        pid = self.svc.postmaster_pid()
        if pid is None:
            return None
        return sum(proc_cpu_seconds(p) or 0.0 for p in [pid, *children_of(pid)])

    def cpu_accounts(self) -> dict[str, float]:
        """Cumulative CPU seconds: the whole host (busy), and each process involved."""
        assert self.svc.app is not None and self.svc.llm is not None
        busy, _ = host_cpu()
        return {
            "t": time.perf_counter(),
            "host": busy / CLK_TCK,
            "app": self.app_cpu(),
            "pg": self.pg_cpu() or 0.0,
            "fake": proc_cpu_seconds(self.svc.llm.pid) or 0.0,
            "bench": proc_cpu_seconds(os.getpid()) or 0.0,
        }

    @staticmethod
    def cpu_cores(a: dict[str, float], b: dict[str, float]) -> dict[str, float | None]:
        """Average cores used between two cpu_accounts(); `other` is everything else on the host."""
        wall = b["t"] - a["t"]
        if wall <= 0:
            return {}
        d = {k: (b[k] - a[k]) / wall for k in ("host", "app", "pg", "fake", "bench")}
        d["other"] = max(0.0, d["host"] - d["app"] - d["pg"] - d["fake"] - d["bench"])
        return {k: round(v, 3) for k, v in d.items()}

    def snapshot(self) -> dict[str, Any]:
        assert self.svc.app is not None
        return {**proc_status(self.svc.app.pid), "cpu_s": self.app_cpu()}

    def check_alive(self) -> None:
        assert self.svc.app is not None and self.svc.llm is not None
        if self.svc.app.poll() is not None:
            raise RuntimeError(f"the app exited with code {self.svc.app.returncode}")
        if self.svc.llm.poll() is not None:
            raise RuntimeError(f"the fake LLM exited with code {self.svc.llm.returncode}")

    # --- API calls
    async def new_user(self, tag: str) -> User:
        assert self.client is not None
        email = f"bench-{tag}-{uuid.uuid4().hex[:10]}@example.com"
        r = await self.client.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD})
        if r.status_code != 201:
            raise RuntimeError(f"register -> {r.status_code} {r.text[:300]}")
        # A 401 right after a 201 means the sign-up was not committed yet: count it, retry (bounded).
        for attempt in range(20):
            r = await self.client.post(f"{API}/auth/login", data={"username": email, "password": PASSWORD})
            if r.status_code != 401:
                break
            self._race("login 401 right after register 201", f"{email} attempt {attempt + 1}: {r.text[:200]}")
            await asyncio.sleep(0.05 * (attempt + 1))
        if r.status_code != 200:
            raise RuntimeError(f"login -> {r.status_code} {r.text[:300]}")
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return User(headers, await self.new_session(headers))

    def _race(self, kind: str, sample: str) -> None:
        self.setup_races[kind] += 1
        if len(self.race_samples) < 10:
            self.race_samples.append(f"{kind}: {sample}")

    async def new_session(self, headers: dict[str, str]) -> str:
        assert self.client is not None
        r = await self.client.post(f"{API}/sessions", json={}, headers=headers)
        if r.status_code != 201:
            raise RuntimeError(f"create session -> {r.status_code} {r.text[:300]}")
        sid = str(r.json()["id"])
        # Same check for the session, so that a late commit cannot show up as a failed chat turn.
        for attempt in range(20):
            r = await self.client.get(f"{API}/sessions/{sid}", headers=headers)
            if r.status_code != 404:
                break
            self._race("GET session 404 right after create 201", f"{sid} attempt {attempt + 1}")
            await asyncio.sleep(0.05 * (attempt + 1))
        if r.status_code != 200:
            raise RuntimeError(f"get session -> {r.status_code} {r.text[:300]}")
        return sid

    async def new_users(self, n: int, tag: str) -> list[User]:
        sem = asyncio.Semaphore(10)

        async def one(i: int) -> User:
            async with sem:
                return await self.new_user(f"{tag}{i}")

        return list(await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), 60 + 2 * n))

    def _record_error(self, where: str, turn: Turn) -> None:
        if len(self.error_samples) < 30:
            self.error_samples.append(f"[{where}] {turn.status}: {turn.detail[:300]}")

    async def chat(self, user: User, text: str) -> Turn:
        assert self.client is not None
        t0 = time.perf_counter()
        try:
            r = await self.client.post(
                f"{API}/sessions/{user.session_id}/chat", json={"message": text}, headers=user.headers
            )
        except httpx.HTTPError as exc:
            return Turn(False, type(exc).__name__, (time.perf_counter() - t0) * 1000, detail=str(exc))
        dt = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            return Turn(False, str(r.status_code), dt, detail=r.text)
        try:
            reply = r.json().get("reply", "")
        except ValueError:
            return Turn(False, "bad_json", dt, detail=r.text)
        if reply != f"Echo: {text}":
            return Turn(False, "bad_reply", dt, detail=repr(reply))
        return Turn(True, "200", dt)

    async def chat_stream(self, user: User, text: str) -> Turn:
        assert self.client is not None
        t0 = time.perf_counter()
        first: float | None = None
        event = ""
        done = False
        error = ""
        tokens: list[str] = []
        try:
            async with self.client.stream(
                "POST",
                f"{API}/sessions/{user.session_id}/chat/stream",
                json={"message": text},
                headers=user.headers,
            ) as r:
                if r.status_code != 200:
                    body = (await r.aread()).decode(errors="replace")
                    return Turn(False, str(r.status_code), (time.perf_counter() - t0) * 1000, detail=body)
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                        if event == "token" and first is None:
                            first = time.perf_counter()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                        if event == "token":
                            with contextlib.suppress(ValueError, AttributeError):
                                tokens.append(json.loads(data).get("content", ""))
                        elif event == "done":
                            done = True
                        elif event == "error":
                            error = data
        except httpx.HTTPError as exc:
            return Turn(False, type(exc).__name__, (time.perf_counter() - t0) * 1000, detail=str(exc))
        dt = (time.perf_counter() - t0) * 1000
        ttft = (first - t0) * 1000 if first is not None else None
        if error:
            return Turn(False, "event_error", dt, ttft, detail=error)
        if not done:
            return Turn(False, "no_done_event", dt, ttft)
        if first is None:
            return Turn(False, "no_token_event", dt)
        if "".join(tokens) != f"Echo: {text}":
            return Turn(False, "bad_reply", dt, ttft, detail=repr("".join(tokens)))
        return Turn(True, "200", dt, ttft)

    # --- phases
    async def phase_calibrate(self) -> dict[str, Any]:
        """Time the fake LLM alone with the client stack the app uses (openai + httpx, keep-alive)."""
        from openai import AsyncOpenAI

        cfg = self.cfg
        # openai's own default HTTP client, as in the app (langchain-openai does not pass one either)
        llm = AsyncOpenAI(
            base_url=f"http://{HOST}:{self.svc.llm_port}/v1",
            api_key="not-needed",
            max_retries=0,
            timeout=30.0,
        )
        plain: list[float] = []
        ttft: list[float] = []
        total: list[float] = []
        deadline = time.monotonic() + 2 * cfg.calib_requests * (cfg.latency_ms / 1000 + 1.0) + 20
        try:
            for i in range(cfg.calib_requests + 1):  # the first of each kind warms the connection up
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                await llm.chat.completions.create(
                    model="fake-model", messages=[{"role": "user", "content": f"sequential turn {i}"}]
                )
                if i:
                    plain.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                first = None
                stream = await llm.chat.completions.create(
                    model="fake-model",
                    messages=[{"role": "user", "content": f"streaming turn {i}"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                async for chunk in stream:
                    if first is None and chunk.choices and chunk.choices[0].delta.content:
                        first = time.perf_counter()
                if i and first is not None:
                    ttft.append((first - t0) * 1000)
                    total.append((time.perf_counter() - t0) * 1000)
        finally:
            await llm.close()
        if plain:
            self.base_plain = statistics.median(plain)
        if ttft:
            self.base_ttft = statistics.median(ttft)
            self.base_stream_total = statistics.median(total)
        return {
            "plain_ms": summary(plain),
            "stream_ttft_ms": summary(ttft),
            "stream_total_ms": summary(total),
            "nominal_plain_ms": cfg.latency_ms,
            "nominal_ttft_ms": cfg.latency_ms + cfg.token_delay_ms,
            "baseline_plain_ms": self.base_plain,
            "baseline_ttft_ms": self.base_ttft,
            "baseline_stream_total_ms": self.base_stream_total,
        }

    async def phase_warmup(self) -> None:
        user = await self.new_user("warm")
        for i in range(self.cfg.warmup_turns):
            t = await self.chat(user, f"warm-up turn {i}")
            if not t.ok:
                self._record_error("warmup", t)
            t = await self.chat_stream(user, f"warm-up stream {i}")
            if not t.ok:
                self._record_error("warmup-stream", t)

    async def phase_sequential(self) -> dict[str, Any]:
        cfg = self.cfg
        user = await self.new_user("seq")
        turns: list[Turn] = []
        deadline = time.monotonic() + cfg.seq_turns * (cfg.latency_ms / 1000 + 1.0) + 30
        acc0 = self.cpu_accounts()
        cpu0, t0 = self.app_cpu(), time.perf_counter()
        for i in range(cfg.seq_turns):
            if time.monotonic() > deadline:
                break
            turns.append(await self.chat(user, f"sequential turn {i}"))
        wall, cpu = time.perf_counter() - t0, self.app_cpu() - cpu0
        cores = self.cpu_cores(acc0, self.cpu_accounts())
        for t in turns:
            if not t.ok:
                self._record_error("sequential", t)
        ok = [t.latency_ms for t in turns if t.ok]
        return {
            "turns": len(turns),
            "errors": len(turns) - len(ok),
            "statuses": dict(Counter(t.status for t in turns)),
            "latency_ms": summary(ok),
            "overhead_ms": summary([x - cfg.latency_ms for x in ok]),
            "overhead_calibrated_ms": summary([x - self.base_plain for x in ok]),
            "wall_s": wall,
            "app_cpu_s": cpu,
            "app_cpu_ms_per_turn": 1000 * cpu / max(1, len(turns)),
            "cpu_cores": cores,
        }

    async def phase_stream(self) -> dict[str, Any]:
        cfg = self.cfg
        user = await self.new_user("stream")
        fake_ttft = cfg.latency_ms + cfg.token_delay_ms  # role chunk, token_delay, then the first word
        turns: list[Turn] = []
        totals_overhead: list[float] = []
        totals_overhead_cal: list[float] = []
        deadline = time.monotonic() + cfg.stream_turns * (cfg.latency_ms / 1000 + 2.0) + 30
        acc0 = self.cpu_accounts()
        cpu0 = self.app_cpu()
        for i in range(cfg.stream_turns):
            if time.monotonic() > deadline:
                break
            text = f"streaming turn {i}"
            t = await self.chat_stream(user, text)
            turns.append(t)
            if t.ok:
                # chunks: role, one per word, finish, usage; the fake sleeps token_delay after each one
                chunks = len(f"Echo: {text}".split(" ")) + 3
                totals_overhead.append(t.latency_ms - (cfg.latency_ms + chunks * cfg.token_delay_ms))
                if self.base_stream_total is not None:  # calibrated with messages of the same length
                    totals_overhead_cal.append(t.latency_ms - self.base_stream_total)
        cpu = self.app_cpu() - cpu0
        cores = self.cpu_cores(acc0, self.cpu_accounts())
        for t in turns:
            if not t.ok:
                self._record_error("stream", t)
        ok = [t for t in turns if t.ok and t.ttft_ms is not None]
        return {
            "turns": len(turns),
            "errors": len(turns) - len(ok),
            "statuses": dict(Counter(t.status for t in turns)),
            "fake_ttft_ms": fake_ttft,
            "ttft_ms": summary([t.ttft_ms for t in ok if t.ttft_ms is not None]),
            "ttft_overhead_ms": summary([t.ttft_ms - fake_ttft for t in ok if t.ttft_ms is not None]),
            "total_overhead_ms": summary(totals_overhead),
            "ttft_overhead_calibrated_ms": summary(
                [t.ttft_ms - self.base_ttft for t in ok if t.ttft_ms is not None]
            ),
            "total_overhead_calibrated_ms": summary(totals_overhead_cal),
            "app_cpu_s": cpu,
            "app_cpu_ms_per_turn": 1000 * cpu / max(1, len(turns)),
            "cpu_cores": cores,
        }

    async def phase_level(self, users_n: int) -> dict[str, Any]:
        cfg = self.cfg
        users = await self.new_users(users_n, f"c{users_n}-")
        duration = cfg.level_seconds
        # A bound on count as well as time: no user can do more than one turn per half fake latency.
        max_turns = int(duration / max(cfg.latency_ms / 1000 / 2, 0.001)) + 2
        turns: list[Turn] = []
        ends: list[float] = []

        async def vu(k: int, user: User, stop_at: float) -> None:
            i = 0
            while i < max_turns and time.perf_counter() < stop_at:
                turns.append(await self.chat(user, f"user {k} turn {i}"))
                i += 1
            ends.append(time.perf_counter())

        await asyncio.sleep(0.5)  # let the registrations' tail settle
        acc0 = self.cpu_accounts()
        cpu0, pg0, host0 = self.app_cpu(), self.pg_cpu(), host_cpu()
        t0 = time.perf_counter()
        stop_at = t0 + duration
        tasks = [asyncio.create_task(vu(k, u, stop_at)) for k, u in enumerate(users)]
        _, pending = await asyncio.wait(tasks, timeout=duration + cfg.request_timeout + 30)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = (max(ends) if ends else time.perf_counter()) - t0
        cpu, pg1, host1 = self.app_cpu() - cpu0, self.pg_cpu(), host_cpu()
        cores = self.cpu_cores(acc0, self.cpu_accounts())
        for t in turns:
            if not t.ok:
                self._record_error(f"c={users_n}", t)
        ok = [t.latency_ms for t in turns if t.ok]
        return {
            "users": users_n,
            "duration_s": duration,
            "elapsed_s": elapsed,
            "turns": len(turns),
            "ok": len(ok),
            "errors": len(turns) - len(ok),
            "cancelled_users": len(pending),
            "statuses": dict(Counter(t.status for t in turns)),
            "turns_per_s": len(ok) / elapsed if elapsed > 0 else None,
            "ideal_turns_per_s": users_n / (cfg.latency_ms / 1000) if cfg.latency_ms else None,
            "latency_ms": summary(ok),
            "app_cpu_s": cpu,
            "app_cpu_ms_per_turn": 1000 * cpu / max(1, len(turns)),
            "app_cpu_util": cpu / elapsed if elapsed > 0 else None,
            "host_cpu_busy_pct": host_busy_pct(host0, host1),
            "cpu_cores": cores,
            "pg_cpu_ms_per_turn": (1000 * (pg1 - pg0) / max(1, len(turns)))
            if pg0 is not None and pg1 is not None
            else None,
        }

    async def phase_growth(self) -> dict[str, Any]:
        cfg = self.cfg
        user = await self.new_user("long")
        half = cfg.window // 2
        last = cfg.far_turn + (cfg.window - half) - 1  # window around far_turn: far-half .. far+window-half-1
        early = range(1, cfg.window + 1)
        late = range(cfg.far_turn - half, last + 1)
        lat: dict[int, float] = {}
        failures: list[Turn] = []
        deadline = time.monotonic() + last * (cfg.latency_ms / 1000 + 1.0) + 60
        acc0 = self.cpu_accounts()
        cpu0 = self.app_cpu()
        cpu_early = cpu_late = None
        c_late0 = cpu0
        for n in range(1, last + 1):
            if time.monotonic() > deadline:
                break
            if n == late.start:
                c_late0 = self.app_cpu()
            t = await self.chat(user, f"long thread turn {n}")
            if t.ok:
                lat[n] = t.latency_ms
            else:
                failures.append(t)
                self._record_error(f"growth turn {n}", t)
            if n == early.stop - 1:
                cpu_early = (self.app_cpu() - cpu0) / len(early)
            if n == late.stop - 1:
                cpu_late = (self.app_cpu() - c_late0) / len(late)
        e = [lat[n] for n in early if n in lat]
        ll = [lat[n] for n in late if n in lat]
        m1 = statistics.median(e) if e else None
        m2 = statistics.median(ll) if ll else None
        o1 = m1 - cfg.latency_ms if m1 is not None else None
        o2 = m2 - cfg.latency_ms if m2 is not None else None
        return {
            "far_turn": cfg.far_turn,
            "window": cfg.window,
            "turns_run": len(lat) + len(failures),
            "errors": len(failures),
            "statuses": dict(Counter(t.status for t in failures)),
            "early_turns": [early.start, early.stop - 1],
            "late_turns": [late.start, late.stop - 1],
            "early_median_ms": m1,
            "late_median_ms": m2,
            "ratio": (m2 / m1) if m1 and m2 else None,
            "early_overhead_ms": o1,
            "late_overhead_ms": o2,
            "early_overhead_calibrated_ms": m1 - self.base_plain if m1 is not None else None,
            "late_overhead_calibrated_ms": m2 - self.base_plain if m2 is not None else None,
            "overhead_ratio": (o2 / o1) if o1 and o2 and o1 > 0 else None,
            "app_cpu_ms_per_turn_early": 1000 * cpu_early if cpu_early is not None else None,
            "app_cpu_ms_per_turn_late": 1000 * cpu_late if cpu_late is not None else None,
            "cpu_cores": self.cpu_cores(acc0, self.cpu_accounts()),
            "latency_by_turn_ms": {str(k): round(v, 2) for k, v in sorted(lat.items())},
        }

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        limits = httpx.Limits(
            max_connections=max(cfg.levels) + 20, max_keepalive_connections=max(cfg.levels) + 20
        )
        timeout = httpx.Timeout(cfg.request_timeout, connect=10.0)
        res = self.results
        res["resources_start"] = self.snapshot()
        res["loadavg_start"] = loadavg()
        host0 = host_cpu()
        acc0 = self.cpu_accounts()
        async with httpx.AsyncClient(
            base_url=self.svc.base_url, limits=limits, timeout=timeout, trust_env=False
        ) as self.client:
            phases: list[tuple[str, Any]] = [
                ("calibration", self.phase_calibrate),
                ("warmup", self.phase_warmup),
                ("sequential", self.phase_sequential),
                ("stream", self.phase_stream),
            ]
            phases += [(f"concurrency_{n}", lambda n=n: self.phase_level(n)) for n in cfg.levels]
            phases.append(("growth", self.phase_growth))
            for name, fn in phases:
                self.check_alive()
                print(f"  ... {name}", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                try:
                    out = await fn()
                except (TimeoutError, Exception) as exc:
                    out = {"failed": f"{type(exc).__name__}: {exc}"}
                    print(f"      {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                if out is not None:
                    out["phase_wall_s"] = time.perf_counter() - t0
                    res[name] = out
        res["resources_end"] = self.snapshot() if self.svc.app and self.svc.app.poll() is None else None
        res["loadavg_end"] = loadavg()
        res["host_cpu_busy_pct"] = host_busy_pct(host0, host_cpu())
        with contextlib.suppress(Exception):
            res["cpu_cores"] = self.cpu_cores(acc0, self.cpu_accounts())
        res["setup_races"] = dict(self.setup_races)
        return res


# --------------------------------------------------------------------------- report


def _get(res: dict[str, Any], *path: str) -> Any:
    cur: Any = res
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def evaluate(res: dict[str, Any], cfg: Config, nominal: bool) -> list[dict[str, Any]]:
    """PASS/MISS per target. Overheads are judged against the measured (calibrated) fake LLM timing
    unless `nominal`, in which case against its configured latency."""
    sfx = "" if nominal else "_calibrated"
    basis = "nominal" if nominal else "calibrated"
    checks = []
    p50 = _get(res, "sequential", f"overhead{sfx}_ms", "p50")
    p99 = _get(res, "sequential", f"overhead{sfx}_ms", "p99")
    checks.append(
        {
            "name": f"overhead p50, 1 user ({basis})",
            "value": p50,
            "target": f"< {T_OVERHEAD_P50:g} ms",
            "pass": None if p50 is None else p50 < T_OVERHEAD_P50,
            "unit": "ms",
        }
    )
    checks.append(
        {
            "name": f"overhead p99, 1 user ({basis})",
            "value": p99,
            "target": f"< {T_OVERHEAD_P99:g} ms",
            "pass": None if p99 is None else p99 < T_OVERHEAD_P99,
            "unit": "ms",
        }
    )
    tt = _get(res, "stream", f"ttft_overhead{sfx}_ms", "p50")
    checks.append(
        {
            "name": f"first-token overhead p50 ({basis})",
            "value": tt,
            "target": f"< {T_TTFT_P50:g} ms",
            "pass": None if tt is None else tt < T_TTFT_P50,
            "unit": "ms",
        }
    )
    lvl = _get(res, f"concurrency_{T_CONC_USERS}")
    errs = lvl.get("errors") if isinstance(lvl, dict) else None
    if isinstance(lvl, dict) and lvl.get("cancelled_users"):
        errs = (errs or 0) + lvl["cancelled_users"]
    checks.append(
        {
            "name": f"errors at {T_CONC_USERS} users",
            "value": errs,
            "target": "== 0",
            "pass": None if errs is None else errs == 0,
            "unit": "",
        }
    )
    tps = lvl.get("turns_per_s") if isinstance(lvl, dict) else None
    checks.append(
        {
            "name": f"throughput at {T_CONC_USERS} users",
            "value": tps,
            "target": f">= {T_CONC_TPS:g} turns/s",
            "pass": None if tps is None else tps >= T_CONC_TPS,
            "unit": "turns/s",
        }
    )
    ratio = _get(res, "growth", "ratio")
    checks.append(
        {
            "name": f"turn-{cfg.far_turn} / turn-1 median",
            "value": ratio,
            "target": f"<= {T_GROWTH_RATIO:g}",
            "pass": None if ratio is None else ratio <= T_GROWTH_RATIO,
            "unit": "x",
        }
    )
    return checks


def render(
    res: dict[str, Any], cfg: Config, checks: list[dict[str, Any]], svc: Services, baseline: str
) -> str:
    out: list[str] = []
    w = out.append

    def row(label: str, *cells: str) -> None:
        w(f"  {label:<36}" + "".join(f"{c:>11}" for c in cells))

    def srow(label: str, s: dict[str, Any] | None) -> None:
        s = s or {}
        row(label, fmt(s.get("p50")), fmt(s.get("p90")), fmt(s.get("p99")), fmt(s.get("max")))

    def failed(d: dict[str, Any]) -> None:
        if "failed" in d:
            w(f"   FAILED: {d['failed']}")

    w("")
    host = f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    w(f"== Chat service benchmark  ({host})")
    launch = "python -m tests.fake_llm (as is)" if svc.fake_as_is else "tests.fake_llm with TCP_NODELAY"
    w(
        f"   fake LLM ({launch}): latency {cfg.latency_ms:g} ms, token delay {cfg.token_delay_ms:g} ms;"
        f" app start-up {fmt(svc.startup_seconds, 's')}"
    )
    w(f"   targets judged on {baseline} overheads")
    w(
        f"   host load avg at start {' '.join(res.get('loadavg_start') or ['n/a'])},"
        f" at end {' '.join(res.get('loadavg_end') or ['n/a'])}; host CPU busy during run"
        f" {fmt(res.get('host_cpu_busy_pct'), '%', 0)} (all processes)"
    )
    cc = res.get("cpu_cores") or {}
    if cc:
        w(
            f"   average cores used during the run: app {fmt(cc.get('app'), '', 2)},"
            f" postgres {fmt(cc.get('pg'), '', 2)},"
            f" fake LLM {fmt(cc.get('fake'), '', 2)}, bench client {fmt(cc.get('bench'), '', 2)},"
            f" unrelated processes {fmt(cc.get('other'), '', 2)}"
        )
    w("")

    cal = res.get("calibration", {})
    w(
        f"-- (0) fake LLM alone via the OpenAI client, keep-alive  [{_get(cal, 'plain_ms', 'n') or 0} + "
        f"{_get(cal, 'stream_ttft_ms', 'n') or 0} requests]"
    )
    failed(cal)
    row("", "p50", "p90", "p99", "max", "nominal")
    for key, label, nominal in (
        ("plain_ms", "non-stream response", cfg.latency_ms),
        ("stream_ttft_ms", "stream first content chunk", cfg.latency_ms + cfg.token_delay_ms),
        ("stream_total_ms", "stream complete", None),
    ):
        s = cal.get(key) or {}
        row(label, fmt(s.get("p50")), fmt(s.get("p90")), fmt(s.get("p99")), fmt(s.get("max")), fmt(nominal))
    w("   'calibrated' overheads below subtract these p50s; 'nominal' ones subtract the configured latency.")
    w("")

    seq = res.get("sequential", {})
    w(
        "-- (1) one user, sequential non-streaming turns"
        f"  [{seq.get('turns', 0)} turns, {seq.get('errors', 'n/a')} errors]"
    )
    failed(seq)
    row("", "p50", "p90", "p99", "max")
    srow("latency", seq.get("latency_ms"))
    srow("overhead, nominal (- latency)", seq.get("overhead_ms"))
    srow("overhead, calibrated", seq.get("overhead_calibrated_ms"))
    w(
        f"  app CPU per turn {fmt(seq.get('app_cpu_ms_per_turn'))};"
        f" unrelated load {fmt((seq.get('cpu_cores') or {}).get('other'), 'cores', 2)}"
    )
    w("")

    st = res.get("stream", {})
    w(f"-- (2) streaming turns  [{st.get('turns', 0)} turns, {st.get('errors', 'n/a')} errors]")
    failed(st)
    row("", "p50", "p90", "p99", "max")
    srow("time to first token event", st.get("ttft_ms"))
    srow("first-token overhead, nominal", st.get("ttft_overhead_ms"))
    srow("first-token overhead, calibrated", st.get("ttft_overhead_calibrated_ms"))
    srow("whole-stream overhead, nominal", st.get("total_overhead_ms"))
    srow("whole-stream overhead, calibrated", st.get("total_overhead_calibrated_ms"))
    w(
        f"  app CPU per turn {fmt(st.get('app_cpu_ms_per_turn'))};"
        f" unrelated load {fmt((st.get('cpu_cores') or {}).get('other'), 'cores', 2)}"
    )
    w("")

    w(f"-- (3) throughput: {cfg.level_seconds:g} s per level, each user its own account and session")
    row(
        "users",
        "turns",
        "errors",
        "turns/s",
        "ideal/s",
        "p50",
        "p99",
        "cpu/turn",
        "pg/turn",
        "app cores",
        "unrelated",
    )
    for n in cfg.levels:
        lv = res.get(f"concurrency_{n}", {})
        if "failed" in lv:
            w(f"  {n:<36}FAILED: {lv['failed']}")
            continue
        lat = lv.get("latency_ms", {})
        util = lv.get("app_cpu_util")
        row(
            str(n),
            str(lv.get("turns", "n/a")),
            str(lv.get("errors", "n/a")),
            fmt(lv.get("turns_per_s"), ""),
            fmt(lv.get("ideal_turns_per_s"), "", 0),
            fmt(lat.get("p50")),
            fmt(lat.get("p99")),
            fmt(lv.get("app_cpu_ms_per_turn")),
            fmt(lv.get("pg_cpu_ms_per_turn")),
            fmt(util, "", 2),
            fmt((lv.get("cpu_cores") or {}).get("other"), "", 2),
        )
        if lv.get("statuses") and set(lv["statuses"]) != {"200"}:
            w(f"  {'':<36}statuses: {lv['statuses']}")
    w("   ideal/s = users / nominal latency; cpu/turn = app process; pg/turn = embedded postgres (approx.);")
    w("   app cores = app CPU s / wall s; unrelated = cores busy on the host minus app, postgres,")
    w("   fake LLM and this client, i.e. load from other processes on the machine during the level.")
    w("")

    g = res.get("growth", {})
    w(
        f"-- (4) one long thread: turns {g.get('early_turns')} vs {g.get('late_turns')}"
        f"  [{g.get('turns_run', 0)} turns, {g.get('errors', 'n/a')} errors]"
    )
    failed(g)
    row("", "early", "late", "ratio")
    row(
        "median latency",
        fmt(g.get("early_median_ms")),
        fmt(g.get("late_median_ms")),
        fmt(g.get("ratio"), "x", 3),
    )
    row("median overhead, nominal", fmt(g.get("early_overhead_ms")), fmt(g.get("late_overhead_ms")))
    row(
        "median overhead, calibrated",
        fmt(g.get("early_overhead_calibrated_ms")),
        fmt(g.get("late_overhead_calibrated_ms")),
    )
    row("app CPU per turn", fmt(g.get("app_cpu_ms_per_turn_early")), fmt(g.get("app_cpu_ms_per_turn_late")))
    w(f"  unrelated load during the thread {fmt((g.get('cpu_cores') or {}).get('other'), 'cores', 2)}")
    w("")

    r0, r1 = res.get("resources_start") or {}, res.get("resources_end") or {}
    w("-- (5) app process")
    row("", "start", "end")
    row("RSS", fmt(r0.get("rss_mb"), "MB"), fmt(r1.get("rss_mb"), "MB"))
    row("threads", str(r0.get("threads", "n/a")), str(r1.get("threads", "n/a")))
    row("CPU seconds (cumulative)", fmt(r0.get("cpu_s"), "s", 2), fmt(r1.get("cpu_s"), "s", 2))
    w("")

    w("-- targets")
    for c in checks:
        unit, value = c["unit"], c["value"]
        shown = (
            "n/a"
            if value is None
            else (str(value) if isinstance(value, int) else fmt(value, unit, 2 if unit == "x" else 1))
        )
        w(f"  {c['name']:<38}{shown:>14}   {c['target']:<18}{verdict(c['pass'])}")
    return "\n".join(out)


_ACCESS = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def access_log_statuses(path: Path) -> dict[str, int]:
    """Non-2xx responses in uvicorn's access log, by method, path template and status."""
    found: Counter[str] = Counter()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    for m in _ACCESS.finditer(text):
        if not m.group(3).startswith("2"):
            found[f"{m.group(1)} {_UUID.sub('{id}', m.group(2))} -> {m.group(3)}"] += 1
    return dict(found)


def app_log_findings(path: Path, limit: int = 15) -> tuple[int, list[str]]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, []
    keys = ("error", "exception", "traceback", "warning", "critical")
    hits = [ln for ln in lines if any(k in ln.lower() for k in keys)]
    return len(hits), hits[:limit]


# --------------------------------------------------------------------------- main


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the chat service against the fake LLM.")
    parser.add_argument("--quick", action="store_true", help="small counts; whole run under ~60 s")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--latency-ms", type=float, help="fake LLM latency (default 200)")
    parser.add_argument(
        "--token-delay-ms", type=float, help="fake LLM delay after each streamed chunk (default 10)"
    )
    parser.add_argument("--seq-turns", type=int, help="sequential turns for (1) (default 100)")
    parser.add_argument("--stream-turns", type=int, help="streaming turns for (2) (default 50)")
    parser.add_argument("--levels", help="concurrency levels, comma separated (default 1,10,50)")
    parser.add_argument("--level-seconds", type=float, help="duration of each concurrency level (default 10)")
    parser.add_argument(
        "--far-turn", type=int, help="the late turn compared with turn 1 in (4) (default 200)"
    )
    parser.add_argument("--window", type=int, help="turns timed around turn 1 and the far turn (default 10)")
    parser.add_argument(
        "--fake-as-is",
        action="store_true",
        help="run `python -m tests.fake_llm` literally (Nagle on: ~40 ms extra per call) "
        "instead of the same module with TCP_NODELAY; implies --baseline calibrated",
    )
    parser.add_argument(
        "--baseline",
        choices=["nominal", "calibrated"],
        help="what overhead targets subtract: the configured fake latency (default) or the "
        "fake's measured p50 through the OpenAI client (default with --fake-as-is)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the embedded database's data dir")
    args = parser.parse_args()
    cfg = make_config(args)

    signal.signal(signal.SIGTERM, _interrupt)
    baseline = args.baseline or ("calibrated" if args.fake_as_is else "nominal")
    svc = Services(cfg, keep_data=args.keep_data, fake_as_is=args.fake_as_is)
    print(f"bench: logs and data in {svc.tmp}", file=sys.stderr, flush=True)
    res: dict[str, Any] = {}
    bench: Bench | None = None
    rc = 0
    t_start = time.perf_counter()
    try:
        print("  ... starting fake LLM and app", file=sys.stderr, flush=True)
        svc.start()
        bench = Bench(cfg, svc)
        res = asyncio.run(asyncio.wait_for(bench.run(), cfg.hard_limit))
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping the services", file=sys.stderr)
        rc = 130
    except (TimeoutError, Exception) as exc:
        print(f"bench: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        rc = 1
    finally:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            svc.stop()
        finally:
            signal.signal(signal.SIGINT, old)
    if bench is not None and not res:
        res = bench.results  # partial results from an interrupted or timed-out run

    checks = evaluate(res, cfg, nominal=baseline == "nominal")
    print(render(res, cfg, checks, svc, baseline))
    n_log, log_lines = app_log_findings(svc.app_log)
    errors = bench.error_samples if bench else []
    races = dict(bench.setup_races) if bench else {}
    if races:
        print("\n-- service anomalies during setup (retried by the benchmark, not counted as turn errors)")
        for kind, n in races.items():
            print(f"  {n:>5} x {kind}")
        for sample in bench.race_samples if bench else []:
            print("        e.g. " + sample)
    if errors:
        print(f"\n-- client-side error samples ({len(errors)} shown)")
        for e in errors:
            print("  " + e)
    print(f"\n-- app stderr: {svc.app_log}  ({n_log} error/warning lines)")
    for ln in log_lines:
        print("  " + ln[:300])
    non2xx = access_log_statuses(svc.app_log)
    if non2xx:
        print("   non-2xx responses in the access log:")
        for key, n in sorted(non2xx.items(), key=lambda kv: -kv[1]):
            print(f"  {n:>5} x {key}")
    total = time.perf_counter() - t_start
    print(f"\n   total run time {total:.1f} s")

    if args.json:
        doc = {
            "config": asdict(cfg),
            "quick": args.quick,
            "baseline": baseline,
            "fake_launch": "python -m tests.fake_llm"
            if args.fake_as_is
            else "tests.fake_llm with TCP_NODELAY",
            "results": res,
            "targets": checks,
            "app_startup_s": svc.startup_seconds,
            "app_log": str(svc.app_log),
            "app_log_error_lines": n_log,
            "client_error_samples": errors,
            "total_run_s": total,
            "setup_races": races,
            "access_log_non2xx": non2xx,
            "setup_race_samples": bench.race_samples if bench else [],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str))
        print(f"   wrote {args.json}")
    if rc == 0 and any(c["pass"] is None for c in checks):
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
