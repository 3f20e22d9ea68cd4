"""The admin overview: users, today's turns and tokens, failed and refused requests in the last hour."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from structlog.testing import capture_logs

from app.services import housekeeping
from app.services.api_events import ApiEventCounter
from tests.conftest import assert_error, auth, new_session, register, register_admin
from tests.fake_llm import Fault

A = "/api/v1/admin"
KEYS = {
    "users_total",
    "users_active_today",
    "turns_today",
    "input_tokens_today",
    "output_tokens_today",
    "errors_last_hour",
    "rate_limited_last_hour",
    "generated_at",
}


async def overview(client, admin) -> dict:
    r = await client.get(f"{A}/overview", headers=auth(admin))
    assert r.status_code == 200, r.text
    assert set(r.json()) == KEYS
    return r.json()


async def until(predicate, client, admin, *, within: float = 5.0) -> dict:
    """The overview once `predicate` holds for it (the counts reach the table within a second)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        now = await overview(client, admin)
        if predicate(now) or asyncio.get_running_loop().time() > deadline:
            return now
        await asyncio.sleep(0.1)


def delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in KEYS - {"generated_at"}}


async def test_overview_counts_users_turns_tokens_errors_and_refusals(app, client, fake_llm):
    admin = await register_admin(app, client)
    await app.state.runtime.api_events.flush()
    before = await overview(client, admin)

    user, idle = await register(client), await register(client)
    uid = (await client.get("/api/v1/auth/me", headers=auth(user))).json()["id"]
    sid = await new_session(client, user)
    sent = {"input_tokens": 0, "output_tokens": 0}
    for message in ("hi", "[calc:6*7]"):
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
        assert r.status_code == 200, r.text
        sent = {k: v + r.json()[k] for k, v in sent.items()}
    # Refused: the day's quota is spent (a 429). Failed: the model is down (a 503), once answered
    # as a status and once as the error event ending a stream.
    quota = {"messages_per_day": 3, "tokens_per_day": None}
    assert (await client.put(f"{A}/users/{uid}/quota", json=quota, headers=auth(admin))).status_code == 200
    fake_llm.script(*[Fault(status=500)] * 3)
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "lost"}, headers=auth(user))
    assert_error(r, 503, "llm_unavailable")
    fake_llm.script(*[Fault(status=500)] * 3)
    r = await client.post(f"/api/v1/sessions/{sid}/chat/stream", json={"message": "lost"}, headers=auth(user))
    assert r.status_code == 200 and "event: error" in r.text and "llm_unavailable" in r.text
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "third"}, headers=auth(user))
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "fourth"}, headers=auth(user))
    assert_error(r, 429, "quota_exceeded")
    assert_error(await client.get(f"{A}/overview", headers=auth(idle)), 403)  # not counted

    # Written by the counter's own task, without anyone flushing it.
    refused = before["rate_limited_last_hour"]
    after = await until(lambda o: o["rate_limited_last_hour"] > refused, client, admin)
    d = delta(after, before)
    assert d["users_total"] == 2 and d["users_active_today"] == 1 and d["turns_today"] == 3
    assert d["errors_last_hour"] == 2 and d["rate_limited_last_hour"] == 1
    assert d["input_tokens_today"] > sent["input_tokens"] > 0
    assert d["output_tokens_today"] > sent["output_tokens"] > 0
    generated = datetime.fromisoformat(after["generated_at"])
    assert abs(generated - datetime.now(UTC)) < timedelta(minutes=1)


async def test_counts_are_batched_per_minute_and_kind_and_swept_after_two_days(app, client):
    rt = app.state.runtime
    counter = ApiEventCounter(rt.db.pool, delay=60)  # only explicit flushes write
    for status, error in [(503, "llm_unavailable")] * 3 + [(429, "rate_limited"), (404, "not_found")]:
        counter.record(status, error)
    async with rt.db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM api_event_count"))
        await conn.execute(
            text("INSERT INTO api_event_count VALUES (now() - interval '3 days', 'error.internal_error', 7)")
        )
    await counter.close()  # cancels the pending write and writes the tally itself
    async with rt.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT kind, count FROM api_event_count ORDER BY kind"))).all()
    assert [tuple(r) for r in rows] == [
        ("error.internal_error", 7),
        ("error.llm_unavailable", 3),
        ("rate_limited.rate_limited", 1),
    ]
    await housekeeping.sweep(rt.db.pool, rt.settings)
    async with rt.db.engine.connect() as conn:
        kinds = (await conn.execute(text("SELECT kind FROM api_event_count ORDER BY kind"))).scalars().all()
    assert kinds == ["error.llm_unavailable", "rate_limited.rate_limited"]


async def test_a_failed_write_is_dropped_and_logged_never_raised(app):
    class Broken:
        def connection(self):
            raise OSError("database gone")

    counter = ApiEventCounter(Broken(), delay=0)  # type: ignore[arg-type]
    with capture_logs() as logs:
        counter.record(500, "internal_error")
        await counter.close()  # does not raise
    failed = [entry for entry in logs if entry["event"] == "api_events.flush_failed"]
    assert failed and failed[0]["dropped"] == 1 and failed[0]["error_type"] == "OSError", logs
