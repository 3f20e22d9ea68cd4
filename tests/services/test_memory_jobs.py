"""Memory extraction as durable jobs: queued with the turn, cascaded with the user or session, bounded,
retried, given up on, counted, and run by any process (the API's consumer or `python -m app.worker`)."""

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from sqlalchemy import text

from app.observability import metrics
from app.services.memory_jobs import MemoryJobs
from tests.conftest import (
    asgi_client,
    auth,
    make_settings,
    new_session,
    register,
    running_app,
    scratch_database,
)
from tests.fake_llm import Fault

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def own_db(pg_url: str) -> Iterator[str]:
    """A database of its own: no other test app's consumer may take these jobs."""
    with scratch_database(pg_url, "jobs") as url:
        yield url


@pytest.fixture
async def no_consumer(own_db, fake_llm) -> AsyncIterator:
    """An API process that queues jobs but runs none (MEMORY_JOBS_IN_PROCESS=false)."""
    settings = make_settings(own_db, fake_llm, memory_jobs_in_process=False, memory_max_pending=3)
    async with running_app(settings) as app, asgi_client(app) as client:
        yield app, client


async def _jobs(app, where: str = "true", **params) -> list[tuple]:
    async with app.state.runtime.db.engine.connect() as conn:
        query = (
            f"SELECT user_id, session_id, text, attempts, failed_at FROM memory_job WHERE {where} ORDER BY id"
        )
        return [tuple(r) for r in (await conn.execute(text(query), params)).all()]


async def _user_id(client, user) -> str:
    return str((await client.get("/api/v1/auth/me", headers=auth(user))).json()["id"])


async def _chat(client, user, sid, message) -> None:
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text


async def test_a_turn_queues_its_job_and_deleting_the_session_or_user_drops_it(no_consumer):
    app, client = no_consumer
    assert app.state.runtime.memory_jobs is None
    user = await register(client)
    uid = await _user_id(client, user)
    first, second = await new_session(client, user), await new_session(client, user)
    await _chat(client, user, first, "I like tea [remember:Likes tea]")
    await _chat(client, user, second, "I like jazz [remember:Likes jazz]")
    jobs = await _jobs(app, "user_id = :u", u=uid)
    assert [(str(j[1]), j[2], j[3]) for j in jobs] == [
        (first, "I like tea [remember:Likes tea]", 0),
        (second, "I like jazz [remember:Likes jazz]", 0),
    ]
    assert (await client.delete(f"/api/v1/sessions/{first}", headers=auth(user))).status_code == 204
    assert [str(j[1]) for j in await _jobs(app, "user_id = :u", u=uid)] == [second]
    assert (await client.delete("/api/v1/auth/me", headers=auth(user))).status_code == 204
    assert await _jobs(app, "user_id = :u", u=uid) == []


async def test_the_backlog_is_bounded(no_consumer):
    app, client = no_consumer  # MEMORY_MAX_PENDING=3
    user = await register(client)
    sid = await new_session(client, user)
    dropped = metrics.MEMORY_EXTRACTION_DROPPED._value.get()
    for i in range(5):
        await _chat(client, user, sid, f"fact {i}")
    assert len(await _jobs(app)) == 3
    assert metrics.MEMORY_EXTRACTION_DROPPED._value.get() == dropped + 2
    # The turns themselves were all stored.
    r = await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))
    assert r.json()["total"] == 10


async def test_a_consumer_runs_queued_jobs_gives_up_after_the_attempts_and_reports(no_consumer, fake_llm):
    app, client = no_consumer
    rt = app.state.runtime
    user = await register(client)
    sid = await new_session(client, user)
    await _chat(client, user, sid, "[remember:Lives in Oslo]")
    await _chat(client, user, sid, "[remember:Plays chess]")
    # The first extraction fails on every attempt (one allowed here); the second succeeds.
    fake_llm.script_extraction(Fault(status=400))
    rt.settings = rt.settings.model_copy(update={"memory_job_max_attempts": 1, "memory_workers": 1})
    jobs = MemoryJobs(rt)
    jobs.start()
    try:
        await jobs.idle()
        # Read now rather than on the next pass of the stats loop; rendered before anything else runs,
        # as other apps of this test process publish their own database's numbers into the same gauges.
        await jobs.publish_stats()
        body = metrics.exposition()[0].decode()
    finally:
        await jobs.stop()
    remaining = await _jobs(app)
    assert len(remaining) == 1 and remaining[0][2] == "[remember:Lives in Oslo]"
    assert remaining[0][3] == 1 and remaining[0][4] is not None  # failed, kept for a look
    items = (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]
    assert [m["text"] for m in items] == ["Plays chess"]
    assert "agent_memory_jobs_failed 1.0" in body
    assert "agent_memory_jobs_queued 0.0" in body


async def test_a_late_job_for_a_deleted_user_stores_nothing(no_consumer):
    app, client = no_consumer
    rt = app.state.runtime
    user = await register(client)
    uid, sid = await _user_id(client, user), await new_session(client, user)
    assert (await client.delete("/api/v1/auth/me", headers=auth(user))).status_code == 204
    # A consumer that claimed the job before the deletion now runs it.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await rt.memory.extract(uuid.UUID(uid), uuid.UUID(sid), "I live in Oslo")
    async with rt.db.engine.connect() as conn:
        count = (
            await conn.execute(text("SELECT count(*) FROM memories WHERE user_id = :u"), {"u": uid})
        ).scalar()
    assert count == 0


async def test_the_worker_process_runs_jobs_an_api_process_queued(no_consumer, own_db, fake_llm):
    app, client = no_consumer
    user = await register(client)
    sid = await new_session(client, user)
    await _chat(client, user, sid, "[remember:Has a cat named Miso]")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "MEMORY_", "DATABASE_"))}
    env |= {
        "APP_ENV": "test",
        "DATABASE_URL": own_db,
        "LLM_BASE_URL": fake_llm.base_url,
        "LLM_API_KEY": "test",
        "LLM_MODEL": "fake-model",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.worker", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(300):  # bounded: 30 s
            if not await _jobs(app):
                break
            await asyncio.sleep(0.1)
        assert await _jobs(app) == []
        items = (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]
        assert [m["text"] for m in items] == ["Has a cat named Miso"]
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_housekeeping_deletes_jobs_that_failed_a_week_ago(no_consumer):
    from app.services import housekeeping

    app, client = no_consumer
    rt = app.state.runtime
    user = await register(client)
    sid = await new_session(client, user)
    for message in ("old failure", "recent failure", "waiting"):
        await _chat(client, user, sid, message)
    async with rt.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE memory_job SET failed_at = now() - interval '8 days' WHERE text = 'old failure'")
        )
        await conn.execute(
            text("UPDATE memory_job SET failed_at = now() - interval '1 day' WHERE text = 'recent failure'")
        )
    await housekeeping.sweep(rt.db.pool, rt.settings)
    assert [j[2] for j in await _jobs(app)] == ["recent failure", "waiting"]
