"""SIGTERM (a deploy): no new turns, turns in flight finish within the grace, later ones end typed and
release their lease at once."""

import asyncio
import time
import uuid

import httpx
import psycopg

from tests.api.test_stream import read_events
from tests.conftest import assert_error, auth, new_session
from tests.production.service import new_session as new_remote_session
from tests.production.service import new_user, service_env, start_service


async def _streamed_turn(base: str, user: dict[str, str], sid: str) -> list[tuple[str, dict]]:
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        http.stream(
            "POST", f"/api/v1/sessions/{sid}/chat/stream", json={"message": "slow"}, headers=user
        ) as r,
    ):
        assert r.status_code == 200
        return await read_events(r)


async def _wait_for_model_call(fake_llm, before: int) -> None:
    for _ in range(300):
        if len(fake_llm.chat_requests) > before:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the turn never reached the model")


def _thread_row(url: str, sid: str) -> tuple:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT t.run_id, t.lease_expires_at, (SELECT count(*) FROM message m WHERE m.thread_id = t.id)"
            " FROM thread t WHERE t.session_id = %s",
            (sid,),
        ).fetchone()
    assert row is not None
    return tuple(row)


async def _shut_down_during_a_turn(managed_db, fake_llm, tmp_path, *, grace: str, latency: float):
    env = service_env(managed_db.url, fake_llm.base_url, SHUTDOWN_GRACE_SECONDS=grace)
    service = await start_service(env, tmp_path / "service.log")
    try:
        async with httpx.AsyncClient(base_url=service.base, timeout=10) as http:
            user = await new_user(http, f"deploy-{uuid.uuid4().hex[:8]}@example.com")
            sid = await new_remote_session(http, user)
        fake_llm.latency = latency
        before = len(fake_llm.chat_requests)
        turn = asyncio.create_task(_streamed_turn(service.base, user, sid))
        await _wait_for_model_call(fake_llm, before)
        service.terminate()
        signalled = time.monotonic()
        await asyncio.sleep(0.3)
        # The listening socket is closed at once: a new turn cannot start here.
        async with httpx.AsyncClient(base_url=service.base, timeout=5) as http:
            try:
                r = await http.post(f"/api/v1/sessions/{sid}/chat", json={"message": "more"}, headers=user)
                assert_error(r, 503, "shutting_down")
            except httpx.ConnectError:
                pass
        events = await asyncio.wait_for(turn, timeout=30)
        ended = time.monotonic() - signalled
        code = await asyncio.wait_for(service.proc.wait(), timeout=30)
        return events, ended, code, _thread_row(managed_db.url, sid), service.output()
    finally:
        if service.proc.returncode is None:
            service.proc.kill()
            await service.proc.wait()


async def test_a_turn_in_flight_finishes_after_sigterm(managed_db, fake_llm, tmp_path):
    events, ended, code, (run_id, expires, messages), _ = await _shut_down_during_a_turn(
        managed_db, fake_llm, tmp_path, grace="10", latency=1.5
    )
    assert events[-1][0] == "done" and events[-1][1]["reply"] == "Echo: slow"
    assert ended < 10
    assert code in (0, -15)  # uvicorn re-raises SIGTERM once it has shut down cleanly
    assert (run_id, expires, messages) == (None, None, 2)


async def test_a_turn_longer_than_the_grace_ends_typed_and_releases_its_lease(managed_db, fake_llm, tmp_path):
    events, ended, code, (run_id, expires, messages), output = await _shut_down_during_a_turn(
        managed_db, fake_llm, tmp_path, grace="3", latency=20
    )
    assert events[-1] == ("error", events[-1][1]) and events[-1][1]["error"] == "shutting_down", events
    assert ended < 3.5  # cut before the grace ran out, not after the model's 20 s
    assert code in (0, -15)  # uvicorn re-raises SIGTERM once it has shut down cleanly
    # Released by the process itself, not left to expire, and nothing of the cut turn stored.
    assert (run_id, expires, messages) == (None, None, 0)
    assert "app.turns_cut" in output


async def test_a_draining_process_refuses_new_turns(app, client, user):
    sid = await new_session(client, user)
    app.state.runtime.draining = True
    try:
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"}, headers=auth(user))
    finally:
        app.state.runtime.draining = False
    body = assert_error(r, 503, "shutting_down")
    assert body["detail"] and r.headers["Retry-After"] == "2"
