"""The fake LLM and the app as subprocesses on loopback, started in order and always stopped."""

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

from app.config import RATE_LIMIT_NAMES

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Settings that would point the app elsewhere than the fake LLM and its own embedded database.
_DROP_ENV = {"DATABASE_URL", "LLM_API_KEY", "OPENAI_API_KEY", "LLM_FALLBACK_MODELS"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child before exec: it gets SIGTERM if the benchmark dies, even by SIGKILL.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Services:
    """Starts the fake LLM, then the app; stop() is safe to call at any point, and more than once."""

    def __init__(self, latency_ms: float, token_delay_ms: float) -> None:
        self.latency_ms = latency_ms
        self.token_delay_ms = token_delay_ms
        self.tmp = Path(tempfile.mkdtemp(prefix="agent-bench-", dir="/tmp"))
        self.data_dir = self.tmp / "data"
        self.app_log = self.tmp / "app.log"
        self.llm_url = ""
        self.app_url = ""
        self.llm: subprocess.Popen[bytes] | None = None
        self.app: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self._logs: list[IO[bytes]] = []

    def start(self) -> None:
        env = self._base_env()

        port = free_port()
        self.llm_url = f"http://{HOST}:{port}/v1"
        fake = ["-m", "tests.fake_llm", "--port", str(port), "--latency-ms", str(self.latency_ms)]
        fake += ["--token-delay-ms", str(self.token_delay_ms)]
        self.llm = self._spawn([sys.executable, *fake], env, self.tmp / "fake_llm.log")
        self._wait_ready(f"{self.llm_url}/models", self.llm, self.tmp / "fake_llm.log", 20.0)

        self.start_app()

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV and not k.lower().endswith("_proxy")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start_app(self, **extra_env: str) -> None:
        """Start the app (again, after stop_app) with these settings on top of the benchmark's."""
        env = self._base_env()
        port = free_port()
        self.app_url = f"http://{HOST}:{port}"
        env |= {
            "APP_ENV": "test",
            "BCRYPT_ROUNDS": "4",
            "DATA_DIR": str(self.data_dir),
            "LLM_BASE_URL": self.llm_url,
            "LLM_MODEL": "fake-model",
            # Every client comes from one address and runs far faster than a person: the limits and
            # quotas stay on, so their cost is measured, with ceilings the benchmark never reaches.
            **{f"RATE_LIMIT_{name.upper()}": "1000000/minute" for name in RATE_LIMIT_NAMES},
            "LOGIN_IP_MAX_FAILURES": "1000000",
            "QUOTA_MESSAGES_PER_DAY": "1000000000",
            "QUOTA_TOKENS_PER_DAY": "1000000000000",
            **extra_env,
        }
        uvicorn = ["-m", "uvicorn", "app.main:create_app", "--factory", "--host", HOST, "--port", str(port)]
        uvicorn.append("--no-access-log")  # as scripts/run.py: the app logs each request itself
        t0 = time.perf_counter()
        self.app = self._spawn([sys.executable, *uvicorn], env, self.app_log)
        self._wait_ready(f"{self.app_url}/health", self.app, self.app_log, 180.0)
        self.startup_s = time.perf_counter() - t0

    def check_alive(self) -> None:
        for name, proc in (("app", self.app), ("fake LLM", self.llm)):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the {name} exited with code {proc.returncode}")

    def stop_app(self) -> None:
        self._terminate(self.app, 30.0)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # uvicorn shuts down gracefully: the lifespan closes pools and stops postgres
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)

    def stop(self, keep_logs: bool) -> None:
        self._terminate(self.app, 30.0)
        self._terminate(self.llm, 5.0)
        self._stop_orphan_postgres()
        for log in self._logs:
            log.close()
        self._logs.clear()
        shutil.rmtree(self.data_dir if keep_logs else self.tmp, ignore_errors=True)

    def _spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
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
            preexec_fn=_die_with_parent,
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

    def _stop_orphan_postgres(self) -> None:
        """If the app died without stopping its embedded postgres, stop exactly that one."""
        try:
            pid = int((self.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return
        if str(self.data_dir).encode() not in cmdline:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # postgres "fast" shutdown
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
