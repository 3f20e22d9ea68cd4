"""The service as a real process (uvicorn) for the crash, outage and shutdown tests."""

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import PASSWORD, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    proc: asyncio.subprocess.Process
    base: str
    log: Path

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def service_env(database_url: str, llm_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "MEMORY_", "LANGFUSE_", "DATABASE_"))
    }
    env.update(
        APP_ENV="test",
        LOG_LEVEL="INFO",
        DATABASE_URL=database_url,
        LLM_BASE_URL=llm_url,
        LLM_API_KEY="test",
        LLM_MODEL="fake-model",
        LLM_MAX_RETRIES="0",
        LLM_REQUEST_TIMEOUT="10",
        BCRYPT_ROUNDS="4",
        RATE_LIMIT_ENABLED="false",
        LOGIN_IP_MAX_FAILURES="10000",
        MAX_STREAMS_PER_USER="10",
    )
    env.update(extra)
    return env


async def start_service(env: dict[str, str], log: Path, *, ready_within: float = 60) -> Service:
    port = free_port()
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            env=env, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    service = Service(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + ready_within
    async with httpx.AsyncClient(base_url=service.base, timeout=2) as http:
        while time.monotonic() < deadline and proc.returncode is None:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/ready")).status_code == 200:
                    return service
            await asyncio.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    raise AssertionError(f"the service did not become ready:\n{service.output()[-3000:]}")


@contextlib.asynccontextmanager
async def running_service(env: dict[str, str], log: Path) -> AsyncIterator[Service]:
    service = await start_service(env, log)
    try:
        yield service
    finally:
        if service.proc.returncode is None:
            service.proc.kill()
        await service.proc.wait()


async def new_user(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def new_session(http: httpx.AsyncClient, user: dict[str, str]) -> str:
    r = await http.post("/api/v1/sessions", json={}, headers=user)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])
