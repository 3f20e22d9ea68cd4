"""The service on a separate PostgreSQL server, given only a DATABASE_URL: as the superuser on an empty
database, and as the owner of a managed database (not a superuser; pgvector enabled by an admin) that
`alembic upgrade head` migrated before the app started."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.db.migrations import head_revision
from tests.api.test_account import rows_mentioning
from tests.conftest import asgi_client, assert_error, auth, make_settings, running_app
from tests.fake_llm import Fault
from tests.production.commands import (
    Finished,
    alembic_upgrade,
    chat,
    has_pgvector,
    open_session,
    query,
    recall_across_sessions,
    sign_up,
)
from tests.production.conftest import Provisioned, provision
from tests.production.pgserver import ExternalPostgres


def revision(url: str) -> str:
    return str(query(url, "SELECT version_num FROM alembic_version")[0][0])


async def test_a_superuser_url_on_an_empty_database(superuser_db, fake_llm):
    assert not has_pgvector(superuser_db.url)
    async with running_app(make_settings(superuser_db.url, fake_llm)) as app, asgi_client(app) as http:
        # The start-up migration enabled pgvector itself: nothing was prepared by hand.
        assert has_pgvector(superuser_db.url)
        assert revision(superuser_db.url) == head_revision()
        await recall_across_sessions(
            http, fake_llm, settle=lambda user, fact: app.state.runtime.memory_jobs.idle()
        )


# --- a managed database, one for this module, migrated once by `alembic upgrade head`


@pytest.fixture(scope="module")
def managed(external_pg: ExternalPostgres) -> Provisioned:
    return provision(external_pg, vector=True)


@pytest.fixture(scope="module")
async def migrated(managed: Provisioned) -> Finished:
    return await alembic_upgrade(managed.url)


@pytest.fixture(scope="module")
async def managed_app(managed: Provisioned, migrated: Finished, fake_llm) -> AsyncIterator[FastAPI]:
    assert migrated.code == 0, migrated.output
    # Rate limits on, as in production (the shared test app turns them off).
    settings = make_settings(managed.url, fake_llm, run_migrations_on_start=False, rate_limit_enabled=True)
    async with running_app(settings) as app:
        yield app


def instance_settings(managed: Provisioned, fake_llm, **overrides):
    """Another replica on the managed database: limits on, memory off (it plays no part there)."""
    return make_settings(
        managed.url, fake_llm, run_migrations_on_start=False, memory_enabled=False, **overrides
    )


async def test_alembic_as_the_owning_role_migrates_to_head(managed, migrated):
    assert query(managed.url, "SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user") == [
        (False, False)
    ]
    assert migrated.code == 0, migrated.output
    assert "Traceback" not in migrated.output
    assert revision(managed.url) == head_revision()


async def test_a_turn_remembers_and_recalls_on_the_managed_database(managed_app, fake_llm):
    async with asgi_client(managed_app) as http:
        await recall_across_sessions(
            http, fake_llm, settle=lambda user, fact: managed_app.state.runtime.memory_jobs.idle()
        )


async def test_deleting_an_account_leaves_no_row_of_it(managed_app, fake_llm):
    async with asgi_client(managed_app) as http:
        other = await sign_up(http)
        await chat(http, other, await open_session(http, other), "keep me [remember:Other likes jazz]")
        user = await sign_up(http)
        for _ in range(2):
            sid = await open_session(http, user)
            await chat(http, user, sid, "hello [remember:I have a cat called Miso]")
            await chat(http, user, sid, "[calc:1+2]")  # a tool call: checkpoint writes too
        r = await http.post("/api/v1/memories", json={"text": "Prefers tea"}, headers=auth(user))
        assert r.status_code == 201, r.text
        await managed_app.state.runtime.memory_jobs.idle()
        me = (await http.get("/api/v1/auth/me", headers=auth(user))).json()
        other_id = (await http.get("/api/v1/auth/me", headers=auth(other))).json()["id"]
        async with managed_app.state.runtime.db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT s.id, t.id FROM session s JOIN thread t ON t.session_id = s.id WHERE user_id = :u"
                ),
                {"u": me["id"]},
            )
            needles = [me["id"], user["email"], *{str(v) for row in rows for v in row}]
        before = await rows_mentioning(managed_app, needles)
        others_before = await rows_mentioning(managed_app, [other_id])
        held = {
            "user", "session", "thread", "message", "checkpoints", "checkpoint_blobs", "memories",
            "memory_history", "memory_message", "auth_session", "usage_daily",
        }  # fmt: skip
        assert held <= {table for table, count in before.items() if count}, before

        assert (await http.delete("/api/v1/auth/me", headers=auth(user))).status_code == 204
        after = await rows_mentioning(managed_app, needles)
        # Kept: the audit log, by design (it records what admins did). The rate-limit counters keyed
        # by the user's id go with the account.
        left = {table: count for table, count in after.items() if count}
        assert left.keys() <= {"audit_log"}, left
        assert await rows_mentioning(managed_app, [other_id]) == others_before


async def test_rate_limits_hold_across_two_instances(managed, migrated, fake_llm):
    settings = instance_settings(
        managed, fake_llm, rate_limit_enabled=True, rate_limit_login="3/minute",
        trusted_proxy_header="X-Forwarded-For",
    )  # fmt: skip
    async with (
        running_app(settings) as one,
        running_app(settings) as two,
        asgi_client(one) as first,
        asgi_client(two) as second,
    ):
        # An address of this test's own: the peer's counters are shared with this module's other apps.
        client = {"X-Forwarded-For": "203.0.113.9"}
        wrong = {"username": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "not-the-password"}
        statuses = [
            (await http.post("/api/v1/auth/login", data=wrong, headers=client)).status_code
            for http in (first, second, first)
        ]
        assert statuses == [401, 401, 401]
        for http in (second, first):
            assert_error(
                await http.post("/api/v1/auth/login", data=wrong, headers=client), 429, "rate_limited"
            )


async def test_the_turn_limit_per_user_holds_across_two_instances(managed, migrated, fake_llm):
    settings = instance_settings(managed, fake_llm, rate_limit_enabled=False, max_streams_per_user=1)
    async with (
        running_app(settings) as one,
        running_app(settings) as two,
        asgi_client(one) as first,
        asgi_client(two) as second,
    ):
        user = await sign_up(first)
        slow_sid, other_sid = await open_session(first, user), await open_session(second, user)
        fake_llm.script(Fault(delay=1.5))
        slow = asyncio.create_task(chat(first, user, slow_sid, "slow"))
        for _ in range(300):
            if fake_llm.chat_requests or slow.done():
                break
            await asyncio.sleep(0.01)
        assert fake_llm.chat_requests, "the slow turn never reached the model"
        r = await second.post(
            f"/api/v1/sessions/{other_sid}/chat", json={"message": "too"}, headers=auth(user)
        )
        assert "At most 1" in assert_error(r, 429, "too_many_streams")["detail"]
        assert await slow == "Echo: slow"
        assert await chat(second, user, other_sid, "now") == "Echo: now"
