"""Deleting an account leaves no row behind: in our tables, LangGraph's or mem0's."""

import asyncio
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import (
    asgi_client,
    auth,
    make_settings,
    new_session,
    register,
    register_admin,
    running_app,
    scratch_database,
)
from tests.fake_llm import Fault

_COUNTS = """
SELECT
  (SELECT count(*) FROM "user" WHERE id = :u) AS users,
  (SELECT count(*) FROM session WHERE user_id = :u) AS sessions,
  (SELECT count(*) FROM thread WHERE id = ANY(:t)) AS threads,
  (SELECT count(*) FROM message WHERE thread_id = ANY(:t)) AS messages,
  (SELECT count(*) FROM checkpoints WHERE thread_id = ANY(:ts)) AS checkpoints,
  (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = ANY(:ts)) AS blobs,
  (SELECT count(*) FROM checkpoint_writes WHERE thread_id = ANY(:ts)) AS writes,
  (SELECT count(*) FROM memories WHERE user_id = :u OR payload::text LIKE '%' || :us || '%') AS memories,
  (SELECT count(*) FROM memory_history WHERE user_id = :u) AS memory_history,
  (SELECT count(*) FROM memory_message WHERE user_id = :u) AS memory_messages
"""


async def _counts(app, user_id, thread_ids):
    async with app.state.runtime.db.engine.connect() as conn:
        row = (
            await conn.execute(
                text(_COUNTS),
                {"u": user_id, "us": str(user_id), "t": thread_ids, "ts": [str(t) for t in thread_ids]},
            )
        ).one()
    return dict(row._mapping)


async def test_delete_me_removes_everything(app, client):
    user = await register(client)
    other = await register(client)
    other_sid = await new_session(client, other)
    await client.post(f"/api/v1/sessions/{other_sid}/chat", json={"message": "keep me"}, headers=auth(other))
    me = (await client.get("/api/v1/auth/me", headers=auth(user))).json()
    for name in ("a", "b"):
        sid = await new_session(client, user, name)
        for message in ("hello [remember:I have a cat called Miso]", "[calc:1+2]"):
            r = await client.post(
                f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user)
            )
            assert r.status_code == 200
    async with app.state.runtime.db.engine.connect() as conn:
        thread_ids = list(
            (
                await conn.execute(
                    text(
                        "SELECT t.id FROM thread t JOIN session s ON s.id = t.session_id WHERE s.user_id = :u"
                    ),
                    {"u": me["id"]},
                )
            ).scalars()
        )
    r = await client.post("/api/v1/memories", json={"text": "Prefers tea"}, headers=auth(user))
    assert r.status_code == 201
    await app.state.runtime.memory_jobs.idle()
    before = await _counts(app, me["id"], thread_ids)
    assert before["messages"] == 8 and before["checkpoints"] > 0 and before["blobs"] > 0
    assert before["memories"] >= 2 and before["memory_history"] >= 2 and before["memory_messages"] > 0

    assert (await client.delete("/api/v1/auth/me", headers=auth(user))).status_code == 204
    assert set((await _counts(app, me["id"], thread_ids)).values()) == {0}
    assert (await client.get("/api/v1/auth/me", headers=auth(user))).status_code == 401
    # Another user's data is untouched.
    r = await client.get(f"/api/v1/sessions/{other_sid}/messages", headers=auth(other))
    assert r.json()["total"] == 2


# Every table of the public schema is in one of these three: a new table must say where it belongs.
HOLDS_USER_DATA = {
    "user", "auth_session", "session", "thread", "message", "usage_daily", "rate_limit",
    "checkpoints", "checkpoint_blobs", "checkpoint_writes",
    "memories", "memory_history", "memory_message", "memory_job", "feedback", "run", "run_event",
}  # fmt: skip
# The audit log keeps its rows, with the target's email, by design: it records what admins did.
KEPT_BY_DESIGN = {"audit_log"}
HOLDS_NO_USER_DATA = {
    "alembic_version",  # the schema's revision
    "api_event_count",  # failed and refused requests per minute and error code, of nobody in particular
    "checkpoint_migrations",  # LangGraph's schema version
    "login_failure",  # keyed by a hash of whatever email was typed, or by an address; not an account's
    "feedback_tally",  # ratings counted per day, of users deleted: nothing names anyone
}
# Pending writes: a completed turn leaves none, a failed one has its own deleted.
EMPTY_AFTER_COMPLETED_TURNS = {"checkpoint_writes"}


@pytest.fixture(scope="module")
def own_db(pg_url: str) -> Iterator[str]:
    """A database of this module alone: no other test app's job consumer takes its memory jobs."""
    with scratch_database(pg_url, "deletion") as url:
        yield url


async def rows_mentioning(app: FastAPI, needles: list[str]) -> dict[str, int]:
    """Per table of the public schema: the rows whose text holds any of the needles."""
    patterns = [f"%{needle}%" for needle in needles]
    async with app.state.runtime.db.engine.connect() as conn:
        tables = list(
            (
                await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            ).scalars()
        )
        return {
            table: (
                await conn.execute(
                    text(f'SELECT count(*) FROM "{table}" AS r WHERE r::text LIKE ANY(:p)'), {"p": patterns}
                )
            ).scalar_one()
            for table in tables
        }


async def user_rows(app: FastAPI, client, user: dict[str, str]) -> tuple[list[str], dict[str, int]]:
    """What identifies the user's rows (id, email, session and thread ids), and those rows per table."""
    user_id = (await client.get("/api/v1/auth/me", headers=auth(user))).json()["id"]
    async with app.state.runtime.db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT s.id, t.id FROM session s JOIN thread t ON t.session_id = s.id WHERE s.user_id = :u"
            ),
            {"u": user_id},
        )
        needles = [user_id, user["email"], *{str(v) for row in rows for v in row}]
        # A run's events name only their run.
        runs = await conn.execute(text("SELECT id FROM run WHERE user_id = :u"), {"u": user_id})
        needles += [str(row[0]) for row in runs]
    return needles, await rows_mentioning(app, needles)


async def _chat(client, user, sid: str, message: str) -> None:
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text


async def _run(client, user, sid: str, message: str) -> None:
    r = await client.post(f"/api/v1/sessions/{sid}/runs", json={"message": message}, headers=auth(user))
    assert r.status_code == 202, r.text
    for _ in range(200):  # bounded: 10 s
        run = (await client.get(f"/api/v1/sessions/{sid}/runs/{r.json()['id']}", headers=auth(user))).json()
        if run["status"] == "success":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the run did not finish: {run}")


async def _last_reply(client, user, sid: str) -> int:
    r = await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user), params={"limit": 100})
    return int(r.json()["items"][-1]["id"])


async def _tally(app: FastAPI) -> int:
    async with app.state.runtime.db.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT coalesce(sum(count), 0) FROM feedback_tally WHERE rating = 'down'")
        )
        return int(result.scalar_one())


@pytest.mark.parametrize("by", ["self", "admin"])
async def test_deleting_an_account_leaves_no_row_of_it_in_any_table(own_db, fake_llm, by):
    # Rate limits on, as in production, so that the user's counters exist. A memory job that fails
    # once is kept as failed: the user has a job row too.
    settings = make_settings(own_db, fake_llm, rate_limit_enabled=True, memory_job_max_attempts=1)
    async with running_app(settings) as app, asgi_client(app) as client:
        other = await register(client)
        await _chat(client, other, await new_session(client, other), "keep me [remember:Other likes jazz]")
        user = await register(client)
        for _ in range(2):
            sid = await new_session(client, user)
            await _chat(client, user, sid, "hello [remember:I have a cat called Miso]")
            await _chat(client, user, sid, "[calc:1+2]")  # a tool call
            reply = await _last_reply(client, user, sid)
            r = await client.put(
                f"/api/v1/sessions/{sid}/messages/{reply}/feedback",
                json={"rating": "down", "comment": "not what I asked"},
                headers=auth(user),
            )
            assert r.status_code == 200, r.text
        r = await client.post("/api/v1/memories", json={"text": "Prefers tea"}, headers=auth(user))
        assert r.status_code == 201, r.text
        await app.state.runtime.memory_jobs.idle()
        fake_llm.script_extraction(*[Fault(status=400)] * 3)
        await _chat(client, user, sid, "and a dog [remember:The dog is called Rex]")
        await _run(client, user, sid, "a run that outlives its request")
        await app.state.runtime.memory_jobs.idle()

        needles, before = await user_rows(app, client, user)
        _, others_before = await user_rows(app, client, other)
        assert set(before) == HOLDS_USER_DATA | KEPT_BY_DESIGN | HOLDS_NO_USER_DATA, sorted(before)
        held = {table for table, count in before.items() if count}
        assert held >= HOLDS_USER_DATA - EMPTY_AFTER_COMPLETED_TURNS, before
        assert before["rate_limit"] >= 3  # api, chat and memories, each keyed by the user's id

        tally_before = await _tally(app)
        if by == "self":
            r = await client.delete("/api/v1/auth/me", headers=auth(user))
        else:
            admin = await register_admin(app, client)
            user_id = needles[0]
            r = await client.delete(f"/api/v1/admin/users/{user_id}", headers=auth(admin))
        assert r.status_code == 204, r.text

        after = await rows_mentioning(app, needles)
        left = {table: count for table, count in after.items() if count}
        # Only the audit log's record of an admin's deletion is kept (by design).
        assert left == ({"audit_log": 1} if by == "admin" else {}), left
        # Their two ratings are kept as counts, and only as counts.
        assert await _tally(app) == tally_before + 2
        assert (await user_rows(app, client, other))[1] == others_before
