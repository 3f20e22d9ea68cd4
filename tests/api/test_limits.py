"""Rate limits, log-in back-off, daily quotas and concurrent-turn limits, on apps of their own.

The shared test app runs with limits off (every test's users share one address); here each app
turns on what it tests, with PostgreSQL-backed counters that two app instances share.
"""

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from prometheus_client import REGISTRY

from app.config import Rate
from app.repositories.rate_limits import Count
from app.services import rate_limits
from app.services.lockout import lock_duration
from tests.conftest import (
    PASSWORD,
    asgi_client,
    assert_error,
    auth,
    make_settings,
    new_session,
    register,
    register_admin,
    running_app,
)


def new_address() -> str:
    """A client address of this test alone, so no counter is shared with another test."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": f"198.51.100.7, {address}"}  # the left entry is the client's own claim


async def limited_app(pg_url, fake_llm, **overrides):
    values = {"memory_enabled": False, "rate_limit_enabled": True, "trusted_proxy_header": "X-Forwarded-For"}
    return running_app(make_settings(pg_url, fake_llm, **{**values, **overrides}))


def rate_limited_count(name: str) -> float:
    return REGISTRY.get_sample_value("http_rate_limited_total", {"limit": name}) or 0.0


async def log_in(client, email: str, password: str = PASSWORD, headers=None) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", data={"username": email, "password": password}, headers=headers or {}
    )


# --- rate limits


async def test_the_default_limits_apply_without_any_limit_setting(pg_url, fake_llm):
    # Only the switch and the proxy header (to give this test its own address) are set.
    async with await limited_app(pg_url, fake_llm) as app, asgi_client(app) as client:
        headers = via(new_address())
        before = rate_limited_count("register")
        default = app.state.settings.rate("register")
        assert default == Rate(10, 3600)
        for _ in range(default.requests):
            body = {"email": f"d-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
            assert (await client.post("/api/v1/auth/register", json=body, headers=headers)).status_code == 201
        body = {"email": f"d-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
        r = await client.post("/api/v1/auth/register", json=body, headers=headers)
        detail = assert_error(r, 429, "rate_limited")["detail"]
        assert "10 requests per 3600 s" in detail
        assert 1 <= int(r.headers["retry-after"]) <= 2 * 3600
        assert rate_limited_count("register") == before + 1
        # The refused sign-up did not happen.
        r = await log_in(client, body["email"], headers=via(new_address()))
        assert_error(r, 401, "unauthorized")


async def test_limits_hold_across_two_app_instances_sharing_the_database(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_api="4/minute") as one,
        await limited_app(pg_url, fake_llm, rate_limit_api="4/minute") as two,
        asgi_client(one) as first,
        asgi_client(two) as second,
    ):
        user = await register(first)
        statuses = []
        for client in (first, second, first, second, first, second):
            statuses.append((await client.get("/api/v1/sessions", headers=auth(user))).status_code)
        assert statuses == [200, 200, 200, 200, 429, 429]


async def test_authenticated_clients_are_counted_per_user_not_per_address(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_api="2/minute") as app,
        asgi_client(app) as client,
    ):
        address = via(new_address())
        alice, bob = await register(client), await register(client)
        for _ in range(2):
            r = await client.get("/api/v1/sessions", headers={**auth(alice), **address})
            assert r.status_code == 200
        r = await client.get("/api/v1/sessions", headers={**auth(alice), **address})
        assert_error(r, 429, "rate_limited")
        r = await client.get("/api/v1/sessions", headers={**auth(bob), **address})
        assert r.status_code == 200


async def test_the_proxy_header_counts_only_when_configured(pg_url, fake_llm):
    email = f"p-{uuid.uuid4().hex[:8]}@example.com"
    # Not configured: a client cannot escape its limit by inventing X-Forwarded-For values.
    async with (
        await limited_app(pg_url, fake_llm, trusted_proxy_header=None, rate_limit_refresh="3/minute") as app,
        asgi_client(app) as client,
    ):
        statuses = []
        for _ in range(4):
            r = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": "x"}, headers=via(new_address())
            )
            statuses.append(r.status_code)
        # Every invented address was counted as the one peer it came from.
        assert statuses == [401, 401, 401, 429]
    # Configured: each forwarded address has its own budget; the client's own left entry is ignored.
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_login="2/minute") as app,
        asgi_client(app) as client,
    ):
        first, second = new_address(), new_address()
        assert [(await log_in(client, email, headers=via(first))).status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
        assert (await log_in(client, email, headers=via(second))).status_code == 401
        spoofed = {"X-Forwarded-For": f"{second}, {first}"}  # claims to be `second`, arrives from `first`
        assert (await log_in(client, email, headers=spoofed)).status_code == 429


async def test_every_api_route_but_health_names_a_limit(app):
    # A route added later without a limit fails here, not in production.
    checked, unlimited = 0, []
    for context in iter_route_contexts(list(app.routes)):  # included routes, with their full paths
        path = context.path_format or ""
        if not path.startswith("/api/v1/") or path in ("/api/v1/health", "/api/v1/ready"):
            continue
        checked += 1
        names = [getattr(d.call, "__qualname__", "") for d in context.route.dependant.dependencies]
        # First: a refused request must cost nothing else (no bcrypt, no admin check).
        if not names or not names[0].startswith("rate_limit."):
            unlimited.append((sorted(context.methods or []), path))
    assert checked >= 30 and unlimited == []


async def test_chat_and_stream_have_limits_of_their_own(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_chat="2/minute", rate_limit_stream="1/minute") as app,
        asgi_client(app) as client,
    ):
        user = await register(client)
        sid = await new_session(client, user)
        assert [(await chat(client, user, sid)).status_code for _ in range(3)] == [200, 200, 429]
        url = f"/api/v1/sessions/{sid}/chat/stream"
        first = await client.post(url, json={"message": "hi"}, headers=auth(user))
        assert first.status_code == 200 and "event: done" in first.text
        assert_error(await client.post(url, json={"message": "hi"}, headers=auth(user)), 429, "rate_limited")


async def test_a_client_that_waits_as_told_gets_in(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_refresh="2/second") as app,
        asgi_client(app) as client,
    ):
        headers = via(new_address())
        for _ in range(2):
            r = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x"}, headers=headers)
            assert r.status_code == 401
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x"}, headers=headers)
        assert_error(r, 429, "rate_limited")
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 2
        await asyncio.sleep(wait)
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x"}, headers=headers)
        assert r.status_code == 401  # through the limit, refused only for the token


def test_the_sliding_window_weighs_the_previous_window_by_its_overlap():
    rate = Rate(10, 60)
    # 10 requests late in the previous window, 15 s into this one: 7.5 of them still count.
    assert rate_limits.estimate(Count(hits=3, previous_hits=10, elapsed=15), 60) == pytest.approx(10.5)
    assert rate_limits.estimate(Count(hits=2, previous_hits=10, elapsed=15), 60) == pytest.approx(9.5)
    # Refused at 3 (2 kept): allowed again once 10 * overlap + 3 <= 10, at overlap 0.7, 18 s in.
    assert rate_limits.retry_after(Count(hits=3, previous_hits=10, elapsed=15), rate) == pytest.approx(3)
    # This window alone is full: its end, then until enough of it slides out.
    full = Count(hits=11, previous_hits=0, elapsed=20)
    assert rate_limits.retry_after(full, rate) == pytest.approx(40 + 60 * (1 - 9 / 10))


# --- log-in back-off


async def test_an_account_is_locked_after_repeated_failures_and_unknown_emails_behave_the_same(client):
    real = (await register(client))["email"]
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    for email in (real, unknown):
        for _ in range(5):  # LOGIN_MAX_FAILURES
            assert_error(await log_in(client, email, "Wrong!pass1"), 401, "unauthorized")
        r = await log_in(client, email)  # even the right password, while locked
        body = assert_error(r, 429, "login_locked")
        assert int(r.headers["retry-after"]) == 30
        assert body["detail"] == "Too many failed log-in attempts; try again in 30 seconds."


async def test_the_lock_doubles_with_each_further_failure_and_lifts(pg_url, fake_llm):
    async with (
        await limited_app(
            pg_url, fake_llm, rate_limit_enabled=False, login_max_failures=2, login_lockout_seconds=1
        ) as app,
        asgi_client(app) as client,
    ):
        email = (await register(client))["email"]
        assert (await log_in(client, email, "Wrong!pass1")).status_code == 401
        assert (await log_in(client, email, "Wrong!pass1")).status_code == 401  # locked for 1 s
        assert (await log_in(client, email)).headers["retry-after"] == "1"
        await asyncio.sleep(1.1)
        assert (await log_in(client, email, "Wrong!pass1")).status_code == 401  # locked for 2 s
        r = await log_in(client, email)
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        await asyncio.sleep(2.1)
        assert (await log_in(client, email)).status_code == 200
        # Success forgets the account's failures: one more mistake does not lock again.
        assert (await log_in(client, email, "Wrong!pass1")).status_code == 401
        assert (await log_in(client, email)).status_code == 200


def test_lock_durations_double_up_to_the_maximum(settings):
    s = settings.model_copy(update={"login_lockout_seconds": 30, "login_lockout_max_seconds": 3600})
    assert [lock_duration(n, 5, s) for n in (4, 5, 6, 7)] == [
        None,
        timedelta(seconds=30),
        timedelta(seconds=60),
        timedelta(seconds=120),
    ]
    assert lock_duration(10_000, 5, s) == timedelta(seconds=3600)


async def test_an_address_is_locked_after_failures_across_accounts(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_enabled=False, login_ip_max_failures=3) as app,
        asgi_client(app) as client,
    ):
        guesser, neighbour = via(new_address()), via(new_address())
        victim = (await register(client))["email"]
        for _ in range(3):
            email = f"guess-{uuid.uuid4().hex[:8]}@example.com"
            assert (await log_in(client, email, headers=guesser)).status_code == 401
        assert_error(await log_in(client, victim, headers=guesser), 429, "login_locked")
        assert (await log_in(client, victim, headers=neighbour)).status_code == 200


async def test_wrong_current_passwords_count_towards_the_lock(client):
    user = await register(client)
    for _ in range(5):
        r = await client.post(
            "/api/v1/auth/password",
            json={"current_password": "Wrong!pass1", "new_password": "N3w!password"},
            headers=auth(user),
        )
        assert_error(r, 403, "forbidden")
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "N3w!password"},
        headers=auth(user),
    )
    assert_error(r, 429, "login_locked")


async def test_wrong_password_and_unknown_email_take_the_same_time(pg_url, fake_llm):
    # Real bcrypt cost (10 rounds, about 60 ms here), so its time dominates as it does in production.
    async with (
        await limited_app(
            pg_url, fake_llm, rate_limit_enabled=False, bcrypt_rounds=10, login_max_failures=100
        ) as app,
        asgi_client(app) as client,
    ):
        email = (await register(client))["email"]

        async def timed(username: str) -> float:
            started = time.perf_counter()
            assert (await log_in(client, username, "Wrong!pass1")).status_code == 401
            return time.perf_counter() - started

        wrong, unknown = [], []
        for _ in range(7):
            wrong.append(await timed(email))
            unknown.append(await timed(f"nobody-{uuid.uuid4().hex[:8]}@example.com"))
        ratio = statistics.median(unknown) / statistics.median(wrong)
        assert 0.8 < ratio < 1.25, (wrong, unknown)


# --- quotas


async def test_a_quota_of_zero_blocks_the_first_turn_of_the_day(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_enabled=False, quota_messages_per_day=0) as app,
        asgi_client(app) as client,
    ):
        user = await register(client)
        sid = await new_session(client, user)
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"}, headers=auth(user))
        assert_error(r, 429, "quota_exceeded")
        assert "message quota of 0" in r.json()["detail"]


async def chat(client, user, sid, message="hi") -> httpx.Response:
    return await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))


async def test_the_daily_message_quota_refuses_with_the_reset_time_and_admins_can_override(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_enabled=False, quota_messages_per_day=2) as app,
        asgi_client(app) as client,
    ):
        admin, user = await register_admin(app, client), await register(client)
        uid = (await client.get("/api/v1/auth/me", headers=auth(user))).json()["id"]
        sid = await new_session(client, user)
        assert [(await chat(client, user, sid)).status_code for _ in range(2)] == [200, 200]
        r = await chat(client, user, sid)
        detail = assert_error(r, 429, "quota_exceeded")["detail"]
        midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
        assert midnight.isoformat() in detail and "message quota of 2" in detail
        assert int(r.headers["retry-after"]) == pytest.approx(
            (midnight - datetime.now(UTC)).total_seconds(), abs=5
        )
        stream = await client.post(
            f"/api/v1/sessions/{sid}/chat/stream", json={"message": "hi"}, headers=auth(user)
        )
        assert_error(stream, 429, "quota_exceeded")

        r = await client.put(
            f"/api/v1/admin/users/{uid}/quota",
            json={"messages_per_day": 3, "tokens_per_day": None},
            headers=auth(admin),
        )
        assert r.status_code == 200 and r.json()["daily_message_quota"] == 3
        assert (await chat(client, user, sid)).status_code == 200
        detail_view = (await client.get(f"/api/v1/admin/users/{uid}", headers=auth(admin))).json()["quota"]
        assert detail_view["messages_per_day"] == 3 and detail_view["messages_today"] == 3
        assert detail_view["tokens_today"] > 0 and detail_view["tokens_per_day"] == 2_000_000
        assert_error(await chat(client, user, sid), 429, "quota_exceeded")

        audit = await client.get("/api/v1/admin/audit", params={"target_id": uid}, headers=auth(admin))
        assert audit.json()["items"][0]["action"] == "user.quota_changed"
        r = await client.put(
            f"/api/v1/admin/users/{uid}/quota",
            json={"messages_per_day": -1, "tokens_per_day": None},
            headers=auth(admin),
        )
        assert_error(r, 422, "validation_error")
        r = await client.put(f"/api/v1/admin/users/{uid}/quota", json={}, headers=auth(admin))
        assert_error(r, 422, "validation_error")


async def test_the_daily_token_quota_counts_the_model_usage(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_enabled=False, quota_tokens_per_day=1) as app,
        asgi_client(app) as client,
    ):
        user = await register(client)
        sid = await new_session(client, user)
        assert (await chat(client, user, sid)).status_code == 200  # the tokens are known only afterwards
        detail = assert_error(await chat(client, user, sid), 429, "quota_exceeded")["detail"]
        assert "token quota of 1" in detail


# --- concurrent turns


async def test_concurrent_turns_are_limited_per_user_and_in_total(pg_url, fake_llm):
    async with (
        await limited_app(
            pg_url, fake_llm, rate_limit_enabled=False, max_streams_per_user=1, max_streams_total=2
        ) as app,
        asgi_client(app) as client,
    ):
        alice, bob, carol = await register(client), await register(client), await register(client)
        a1, a2 = await new_session(client, alice), await new_session(client, alice)
        b1, c1 = await new_session(client, bob), await new_session(client, carol)
        fake_llm.latency = 1.0
        first = asyncio.create_task(chat(client, alice, a1))
        await asyncio.sleep(0.4)  # the lease is taken before the model is called
        body = assert_error(await chat(client, alice, a2), 429, "too_many_streams")
        assert "At most 1" in body["detail"]
        stream = await client.post(
            f"/api/v1/sessions/{a2}/chat/stream", json={"message": "x"}, headers=auth(alice)
        )
        assert_error(stream, 429, "too_many_streams")
        second = asyncio.create_task(chat(client, bob, b1))
        await asyncio.sleep(0.4)
        assert_error(await chat(client, carol, c1), 429, "too_many_streams")
        assert [(await t).status_code for t in (first, second)] == [200, 200]
        fake_llm.latency = 0.0
        assert (await chat(client, alice, a2)).status_code == 200
        assert (await chat(client, carol, c1)).status_code == 200
