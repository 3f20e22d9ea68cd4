"""The fake LLM and one server at a time (the app, or the floor) as subprocesses on loopback, pinned to
their cores, started in order and always stopped."""

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from app.config import RATE_LIMIT_NAMES
from scripts.bench.probe import postmaster_pid

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Settings that would point the app elsewhere than the fake LLM and its own embedded database.
_DROP_ENV = {
    "DATABASE_URL",
    "LLM_API_KEY",
    "OPENAI_API_KEY",
    "LLM_FALLBACK_MODELS",
    "PROMETHEUS_MULTIPROC_DIR",
}
_DROP_PREFIXES = ("LANGFUSE_", "MEMORY_", "RATE_LIMIT_", "QUOTA_", "WEB_CONCURRENCY", "JWT_", "BCRYPT_")
# Turns in progress at once, per user and in all (MAX_STREAMS_*): their defaults, written out because
# the open-streams phase starts as many runs as they allow (scripts/bench/runs.py).
MAX_RUNS_PER_USER = 3
MAX_RUNS_TOTAL = 200


@dataclass(frozen=True)
class Server:
    """One thing to measure: `kind` is "app" (uvicorn), "gunicorn" (the app) or "floor"."""

    name: str
    label: str
    kind: str
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    jobs_worker: bool = False  # memory jobs in a `python -m app.worker` process, not in the API's

    @property
    def app(self) -> bool:
        return self.kind != "floor"

    @property
    def memory(self) -> bool:
        return self.app and self.env.get("MEMORY_ENABLED") != "false"


@dataclass(frozen=True)
class Pinning:
    """The server on one core, the load generator and the fake LLM on another (2+ CPUs only)."""

    server: frozenset[int] | None
    load: frozenset[int] | None
    both: frozenset[int] | None

    @classmethod
    def choose(cls) -> "Pinning":
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(None, None, None)
        return cls(frozenset(cpus[:1]), frozenset(cpus[1:2]), frozenset(cpus[:2]))

    def describe(self) -> str:
        if self.server is None or self.load is None:
            return "unpinned (fewer than 2 CPUs)"
        return f"server on CPU {min(self.server)}; load generator and fake LLM on CPU {min(self.load)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _before_exec(cpus: frozenset[int] | None) -> Callable[[], None]:
    def setup() -> None:
        # It gets SIGTERM if the benchmark dies, even by SIGKILL; its children inherit the cores.
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if cpus:
            os.sched_setaffinity(0, cpus)

    return setup


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Services:
    """Starts the fake LLM, then servers one after another; stop() is safe at any point, and twice."""

    def __init__(self, latency_ms: float, token_delay_ms: float, reply_words: int) -> None:
        self.fake_args = ["--latency-ms", str(latency_ms), "--token-delay-ms", str(token_delay_ms)]
        # A burst of new connections (50 users at once) overflows socketserver's listen queue of 5:
        # the dropped SYNs come back 1 s, 3 s, 7 s later, as if the server under test were slow.
        self.fake_args += ["--reply-words", str(reply_words), "--backlog", "1024"]
        self.pinning = Pinning.choose()
        self.tmp = Path(tempfile.mkdtemp(prefix="agent-bench-", dir="/tmp"))
        self.data_dir = self.tmp / "data"
        self.jwt_secret = secrets.token_urlsafe(48)  # production refuses a weak one; one per run
        self.llm_url = ""
        self.url = ""
        self.llm: subprocess.Popen[bytes] | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.log = self.tmp / "server.log"
        self._logs: list[IO[bytes]] = []

    def pin_benchmark(self) -> None:
        """The load generator's core: call before any thread starts, as threads inherit it."""
        if self.pinning.load:
            os.sched_setaffinity(0, self.pinning.load)

    def start_fake(self) -> None:
        port = free_port()
        self.llm_url = f"http://{HOST}:{port}/v1"
        argv = [sys.executable, "-m", "tests.fake_llm", "--port", str(port), *self.fake_args]
        self.llm = self._spawn(argv, self._base_env(), self.tmp / "fake_llm.log", self.pinning.load)
        self._wait_ready(f"{self.llm_url}/models", self.llm, self.tmp / "fake_llm.log", 20.0)

    def _base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _DROP_ENV and not k.startswith(_DROP_PREFIXES) and not k.lower().endswith("_proxy")
        }
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _app_env(self, port: int) -> dict[str, str]:
        return {
            "APP_ENV": "production",
            "JWT_SECRET_KEY": self.jwt_secret,
            "HOST": HOST,
            "PORT": str(port),
            "DATA_DIR": str(self.data_dir),
            "LLM_BASE_URL": self.llm_url,
            "LLM_MODEL": "fake-model",
            # Every client comes from one address and runs far faster than a person: the limits and
            # quotas stay on, so their cost is measured, with ceilings the benchmark never reaches.
            **{f"RATE_LIMIT_{name.upper()}": "1000000/minute" for name in RATE_LIMIT_NAMES},
            "LOGIN_IP_MAX_FAILURES": "1000000",
            "QUOTA_MESSAGES_PER_DAY": "1000000000",
            "QUOTA_TOKENS_PER_DAY": "1000000000000",
            "MAX_STREAMS_PER_USER": str(MAX_RUNS_PER_USER),
            "MAX_STREAMS_TOTAL": str(MAX_RUNS_TOTAL),
        }

    def start_server(self, server: Server) -> float:
        """Start it (after stop_server) and wait until it answers; the seconds that took."""
        port = free_port()
        self.url = f"http://{HOST}:{port}"
        env = self._base_env()
        cpus = self.pinning.both if server.workers > 1 else self.pinning.server
        if server.kind == "floor":
            env |= {"FLOOR_LLM_URL": self.llm_url}
            argv = ["-m", "uvicorn", "scripts.bench.floor:create_app", "--factory"]
            argv += ["--host", HOST, "--port", str(port), "--no-access-log", "--workers", str(server.workers)]
        elif server.kind == "gunicorn":
            # As the image runs it (Dockerfile), with the multiprocess metrics directory compose sets.
            prom = self.tmp / "prometheus"
            env |= self._app_env(port) | {"WEB_CONCURRENCY": str(server.workers)}
            env |= {"PROMETHEUS_MULTIPROC_DIR": str(prom)} | server.env
            argv = ["-m", "gunicorn", "-c", "app/gunicorn_conf.py", "app.main:create_app()"]
        else:
            env |= self._app_env(port) | server.env
            argv = ["-m", "uvicorn", "app.main:create_app", "--factory", "--host", HOST, "--port", str(port)]
            argv.append("--no-access-log")  # as scripts/run.py: the app logs each request itself
        if server.jobs_worker:
            env["MEMORY_JOBS_IN_PROCESS"] = "false"
        self.log = self.tmp / f"{server.name}.log"
        t0 = time.perf_counter()
        self.server = self._spawn([sys.executable, *argv], env, self.log, cpus)
        self._wait_ready(f"{self.url}/health", self.server, self.log, 180.0)
        if server.jobs_worker:  # after gunicorn, which empties the metrics directory they share
            log = self.tmp / f"{server.name}-worker.log"
            self.worker = self._spawn([sys.executable, "-m", "app.worker"], env, log, cpus)
            self._wait_logged("worker.started", self.worker, log, 120.0)
        return time.perf_counter() - t0

    @property
    def server_pids(self) -> list[int]:
        return [p.pid for p in (self.server, self.worker) if p is not None]

    def check_alive(self) -> None:
        for name, proc in (("server", self.server), ("memory worker", self.worker), ("fake LLM", self.llm)):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the {name} exited with code {proc.returncode}")

    def stop_server(self) -> None:
        self._terminate(self.worker, 30.0)
        self._terminate(self.server, 60.0)  # gunicorn gives turns in flight their grace, then 5 s
        self.worker = None
        self._stop_orphan_postgres()

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # a graceful stop: the lifespan closes pools and stops postgres
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the workers too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)

    def stop(self, keep_logs: bool) -> None:
        self.stop_server()
        self._terminate(self.llm, 5.0)
        for log in self._logs:
            log.close()
        self._logs.clear()
        shutil.rmtree(self.data_dir if keep_logs else self.tmp, ignore_errors=True)

    def _spawn(
        self, argv: list[str], env: dict[str, str], log: Path, cpus: frozenset[int] | None
    ) -> subprocess.Popen[bytes]:
        out = log.open("wb")
        self._logs.append(out)
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only the benchmark, which stops the children in order
            preexec_fn=_before_exec(cpus),
        )

    @staticmethod
    def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"{log.stem} exited with {proc.returncode}; {log}:\n{tail(log)}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                time.sleep(0.2)
        raise RuntimeError(f"{url} not ready after {limit_s:.0f} s; {log}:\n{tail(log)}")

    @staticmethod
    def _wait_logged(text: str, proc: subprocess.Popen[bytes], log: Path, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{log.stem} exited with {proc.returncode}; {log}:\n{tail(log)}")
            if text in log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{log.stem} did not log {text!r} in {limit_s:.0f} s; {log}:\n{tail(log)}")

    def _stop_orphan_postgres(self) -> None:
        """If the app died without stopping its embedded postgres, stop exactly that one."""
        pid = postmaster_pid(self.data_dir)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if pid else b""
        except OSError:
            return
        if pid is None or str(self.data_dir).encode() not in cmdline:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # postgres "fast" shutdown
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
