"""What an operator runs against a managed database (alembic, uvicorn, gunicorn) as subprocesses, and
the HTTP steps the production-path tests share."""

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from tests.conftest import PASSWORD, auth
from tests.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PGVECTOR_HINT = "CREATE EXTENSION vector"


@dataclass(frozen=True)
class Finished:
    code: int
    output: str  # stdout and stderr, interleaved


def operator_env(database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment, with only DATABASE_URL (and `extra`) saying where and how to run."""
    skip = ("LLM_", "MEMORY_", "LANGFUSE_", "DATABASE_", "RUN_MIGRATIONS_", "APP_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(DATABASE_URL=database_url, **extra)
    return env


async def run_to_end(args: list[str], env: dict[str, str], *, timeout: float = 120) -> Finished:
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(errors="replace"))


async def alembic_upgrade(database_url: str) -> Finished:
    """`alembic upgrade head` from a shell, as the database's role."""
    return await run_to_end([str(VENV_BIN / "alembic"), "upgrade", "head"], operator_env(database_url))


def query(url: str, statement: str) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return [tuple(row) for row in conn.execute(statement).fetchall()]  # type: ignore[arg-type]


def public_tables(url: str) -> set[str]:
    return {name for (name,) in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def has_pgvector(url: str) -> bool:
    return bool(query(url, "SELECT 1 FROM pg_extension WHERE extname = 'vector'"))


# --- over HTTP, in-process (ASGI) or to a server process alike


async def sign_up(http: httpx.AsyncClient) -> dict[str, str]:
    email = f"prod-{uuid.uuid4().hex[:10]}@example.com"
    r = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}", "email": email}


async def open_session(http: httpx.AsyncClient, user: dict[str, str]) -> str:
    r = await http.post("/api/v1/sessions", json={}, headers=auth(user))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def chat(http: httpx.AsyncClient, user: dict[str, str], sid: str, message: str) -> str:
    r = await http.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text
    return str(r.json()["reply"])


async def wait_for_memory(http: httpx.AsyncClient, user: dict[str, str], text: str) -> None:
    """A server process's extraction job is not ours to await: poll the user's memories (bounded, and
    below the default memories rate limit of 120 a minute)."""
    for _ in range(75):
        r = await http.get("/api/v1/memories", headers=auth(user))
        assert r.status_code == 200, r.text
        if text in [m["text"] for m in r.json()["items"]]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} was never remembered")


def system_prompt(fake_llm: FakeLLM) -> str:
    return str(fake_llm.chat_requests[-1]["messages"][0]["content"])


async def recall_across_sessions(
    http: httpx.AsyncClient,
    fake_llm: FakeLLM,
    *,
    settle: Callable[[dict[str, str], str], Awaitable[None]],
) -> None:
    """A fact told in one session is in the model's system prompt in another: the whole memory path
    (job queue, extraction by the LLM, embedding, pgvector write and nearest-neighbour recall)."""
    user = await sign_up(http)
    fact = f"My dog is Biscuit, born in {uuid.uuid4().int % 9000 + 1000}"
    reply = await chat(http, user, await open_session(http, user), f"Hi! [remember:{fact}]")
    assert reply.startswith("Echo: Hi!")
    await settle(user, fact)
    await chat(http, user, await open_session(http, user), "What is my dog called?")
    prompt = system_prompt(fake_llm)
    assert "remember about this user" in prompt
    assert f"- {fact}" in prompt
