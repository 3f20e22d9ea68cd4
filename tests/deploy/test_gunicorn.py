"""Gunicorn with uvicorn workers: the master migrates once, two workers serve, SIGTERM ends it cleanly."""

import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, text

from app.db import normalise_url
from app.db.migrations import head_revision
from tests.conftest import auth, free_port, make_settings, new_session, register, scratch_database

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "app" / "gunicorn_conf.py"
MIGRATED_BY_MASTER = "Migrations applied by the master"


@pytest.fixture
def fresh_db(pg_url: str) -> Iterator[str]:
    """An empty database on the session's server, so the master's migration has work to do."""
    with scratch_database(pg_url, "gunicorn") as url:
        yield url


def schema_revision(url: str) -> str | None:
    engine = create_engine(normalise_url(url).sqlalchemy)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    finally:
        engine.dispose()


def load_conf() -> ModuleType:
    """A fresh copy of the config module, read under the current environment, as gunicorn reads it."""
    spec = importlib.util.spec_from_file_location(f"gunicorn_conf_{uuid.uuid4().hex}", CONF)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def server_env(database_url: str, llm_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "MEMORY_", "LANGFUSE_"))}
    env.update(
        APP_ENV="test",
        DATABASE_URL=database_url,
        RUN_MIGRATIONS_ON_START="true",
        LLM_BASE_URL=llm_url,
        LLM_API_KEY="test",
        LLM_MODEL="fake-model",
        BCRYPT_ROUNDS="4",
        # Memory has tests of its own; here it would only load an embedding model into each worker.
        MEMORY_ENABLED="false",
        WEB_CONCURRENCY="2",
        HOST="127.0.0.1",
        PORT=str(port),
    )
    return env


async def start_gunicorn(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "gunicorn", "-c", str(CONF), "app.main:create_app()"),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )


async def wait_until_healthy(http: httpx.AsyncClient, proc: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 60
    for _ in range(600):
        if proc.returncode is not None or time.monotonic() > deadline:
            break
        try:
            if (await http.get("/api/v1/health", timeout=2)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"gunicorn was not healthy within 60 s (exit code {proc.returncode}):\n{log.read_text()}")


async def wait_for_log(log: Path, line: str, count: int) -> None:
    deadline = time.monotonic() + 60
    for _ in range(600):
        if log.read_text().count(line) >= count or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert log.read_text().count(line) >= count, f"expected {count}x {line!r}:\n{log.read_text()}"


def stop(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_two_workers_serve_a_chat_and_stop_on_sigterm(fresh_db, fake_llm, tmp_path):
    # A fresh database: both workers create LangGraph's tables at once, under the setup lock.
    port, log = free_port(), tmp_path / "gunicorn.log"
    proc = await start_gunicorn(server_env(fresh_db, fake_llm.base_url, port), log)
    workers: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_until_healthy(http, proc, log)
            # Health answers as soon as one worker serves; both must have run the app's lifespan.
            await wait_for_log(log, "Application startup complete", 2)
            workers = [child.pid for child in psutil.Process(proc.pid).children()]
            assert len(set(workers)) == 2, log.read_text()
            assert all(f"Booting worker with pid: {pid}" in log.read_text() for pid in workers)
            assert (await http.get("/api/v1/ready")).status_code == 200
            user = await register(http)
            sid = await new_session(http, user)
            r = await http.post(
                f"/api/v1/sessions/{sid}/chat", json={"message": "hello, workers"}, headers=auth(user)
            )
            assert r.status_code == 200, r.text
            assert r.json()["reply"] == "Echo: hello, workers"

        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.wait_for(proc.wait(), timeout=45)
        print(f"gunicorn stopped {time.monotonic() - started:.2f}s after SIGTERM")
        assert code == 0, log.read_text()
        assert not any(psutil.pid_exists(pid) for pid in workers)
        assert log.read_text().count(MIGRATED_BY_MASTER) == 1, log.read_text()
        assert schema_revision(fresh_db) == head_revision()
    finally:
        if proc.returncode is None:
            stop([proc.pid, *workers])
            await proc.wait()


async def test_master_refuses_to_start_when_migrations_fail(fake_llm, tmp_path):
    closed = free_port()  # bound and released: nothing listens there
    url = f"postgresql://nobody:nothing@127.0.0.1:{closed}/nowhere"
    log = tmp_path / "gunicorn.log"
    proc = await start_gunicorn(server_env(url, fake_llm.base_url, free_port()), log)
    try:
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            stop([proc.pid])
            await proc.wait()
    output = log.read_text()
    assert code != 0, output
    assert "OperationalError" in output, output
    assert "Booting worker" not in output


# --- the config module in-process


def test_workers_default_to_two_and_bind_follows_host_and_port(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "9001")
    conf = load_conf()
    assert (conf.workers, conf.bind) == (2, "0.0.0.0:9001")
    assert conf.worker_class == "uvicorn.workers.UvicornWorker"


async def test_master_hook_migrates_and_tells_workers_to_skip(fresh_db, fake_llm, monkeypatch):
    monkeypatch.setenv("RUN_MIGRATIONS_ON_START", "true")  # restored after the test
    conf = load_conf()
    monkeypatch.setattr(conf, "_settings", make_settings(fresh_db, fake_llm))
    logged: list[str] = []
    server = SimpleNamespace(log=SimpleNamespace(info=logged.append))
    # The hook runs its own event loop, as it does in gunicorn's master.
    await asyncio.to_thread(conf.on_starting, server)
    assert schema_revision(fresh_db) == head_revision()
    assert os.environ["RUN_MIGRATIONS_ON_START"] == "false"
    assert logged == [f"{MIGRATED_BY_MASTER}; workers skip them"]


async def test_master_hook_leaves_the_embedded_database_to_the_workers(fake_llm, monkeypatch):
    monkeypatch.setenv("RUN_MIGRATIONS_ON_START", "true")
    conf = load_conf()
    monkeypatch.setattr(conf, "_settings", make_settings("", fake_llm))
    logged: list[str] = []
    await asyncio.to_thread(conf.on_starting, SimpleNamespace(log=SimpleNamespace(info=logged.append)))
    assert os.environ["RUN_MIGRATIONS_ON_START"] == "true"
    assert logged == []
