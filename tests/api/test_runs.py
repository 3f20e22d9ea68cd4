"""Runs that outlive the request: start, poll, stream and resume, cancel from anywhere, crashes."""

import asyncio
import json
import uuid

import httpx
from sqlalchemy import text

from app.services import housekeeping
from app.services.chat import watch
from tests.conftest import asgi_client, assert_error, auth, new_session, register, running_app, serve

FINISHED = {"success", "error", "cancelled"}


def runs_url(sid: str, run_id: str | None = None, tail: str = "") -> str:
    return f"/api/v1/sessions/{sid}/runs" + (f"/{run_id}" if run_id else "") + tail


async def start(client: httpx.AsyncClient, user, sid: str, message: str) -> dict:
    r = await client.post(runs_url(sid), json={"message": message}, headers=auth(user))
    assert r.status_code == 202, r.text
    return r.json()


async def wait_finished(client: httpx.AsyncClient, user, sid: str, run_id: str, within: float = 15) -> dict:
    for _ in range(int(within / 0.05)):
        r = await client.get(runs_url(sid, run_id), headers=auth(user))
        assert r.status_code == 200, r.text
        if r.json()["status"] in FINISHED:
            return r.json()
        await asyncio.sleep(0.05)
    raise AssertionError("the run did not finish")


async def read_sse(response: httpx.Response, stop_after: int | None = None) -> list[tuple[int, str, dict]]:
    """(id, event, data) of each event, in order; stops reading after `stop_after` events."""
    events: list[tuple[int, str, dict]] = []
    seq, name = None, None
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            seq = int(line[4:])
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            assert seq is not None and name is not None
            events.append((seq, name, json.loads(line[6:])))
            if stop_after is not None and len(events) >= stop_after:
                break
    return events


async def stream(http: httpx.AsyncClient, user, sid, run_id, *, headers=None, params=None, stop_after=None):
    async with http.stream(
        "GET", runs_url(sid, run_id, "/stream"), headers={**auth(user), **(headers or {})}, params=params
    ) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        return await read_sse(r, stop_after)


async def test_a_run_answers_after_its_request_and_stores_the_reply(client, user):
    sid = await new_session(client, user)
    run = await start(client, user, sid, "hello runs")
    assert run["status"] == "running" and run["session_id"] == sid and run["message"] == "hello runs"
    assert set(run) >= {"id", "error", "reply_message_id", "created_at", "started_at", "finished_at"}
    done = await wait_finished(client, user, sid, run["id"])
    assert done["status"] == "success" and done["error"] is None
    assert done["started_at"] and done["finished_at"]
    items = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    assert [(m["role"], m["content"]) for m in items] == [
        ("user", "hello runs"),
        ("assistant", "Echo: hello runs"),
    ]
    assert items[1]["id"] == done["reply_message_id"]
    second = await start(client, user, sid, "again")
    await wait_finished(client, user, sid, second["id"])
    page = (await client.get(runs_url(sid), headers=auth(user), params={"limit": 1})).json()
    assert page["total"] == 2 and page["limit"] == 1 and [r["id"] for r in page["items"]] == [second["id"]]
    page = (await client.get(runs_url(sid), headers=auth(user), params={"offset": 1})).json()
    assert [r["id"] for r in page["items"]] == [run["id"]]


async def test_stream_from_the_start_then_resume_exactly_after_the_last_event(app, client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.05
    words = " ".join(f"w{i}" for i in range(12))
    run = await start(client, user, sid, words)
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=15) as http:
        first = await stream(http, user, sid, run["id"], stop_after=2)  # leave mid-run
        rest = await stream(http, user, sid, run["id"], headers={"Last-Event-ID": str(first[-1][0])})
        replay = await stream(http, user, sid, run["id"])  # the run has finished: a replay
        after = await stream(http, user, sid, run["id"], params={"after": 3})
    assert first + rest == replay
    assert [seq for seq, _, _ in replay] == list(range(1, len(replay) + 1))
    names = [name for _, name, _ in replay]
    assert names[0] == "token" and names[-1] == "done" and set(names) == {"token", "done"}
    tokens = "".join(d["content"] for _, name, d in replay if name == "token")
    assert tokens == replay[-1][2]["reply"] == f"Echo: {words}"
    assert after == replay[3:]
    done = (await client.get(runs_url(sid, run["id"]), headers=auth(user))).json()
    assert replay[-1][2]["message_id"] == done["reply_message_id"]


async def test_a_tool_run_streams_the_chat_streams_events(app, client, user):
    sid = await new_session(client, user)
    run = await start(client, user, sid, "[calc:6*7]")
    await wait_finished(client, user, sid, run["id"])
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=15) as http:
        events = await stream(http, user, sid, run["id"])
    tool = next(d for _, name, d in events if name == "tool")
    assert tool == {"name": "calculator", "args": {"expression": "6*7"}, "result": "42", "is_error": False}
    assert events[-1][1] == "done" and events[-1][2]["tool_calls"] == [tool]


async def test_busy_session_is_409_and_cancel_stores_nothing(client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.2
    run = await start(client, user, sid, " ".join(f"w{i}" for i in range(40)))
    r = await client.post(runs_url(sid), json={"message": "second"}, headers=auth(user))
    assert_error(r, 409, "thread_busy")
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "x"}, headers=auth(user))
    assert_error(r, 409, "thread_busy")
    await asyncio.sleep(0.3)
    r = await client.post(runs_url(sid, run["id"], "/cancel"), headers=auth(user))
    assert r.status_code == 202, r.text
    assert r.json()["cancel_requested"] is True
    done = await wait_finished(client, user, sid, run["id"], within=5)
    assert done["status"] == "cancelled" and done["reply_message_id"] is None
    # A finished run is returned unchanged.
    r = await client.post(runs_url(sid, run["id"], "/cancel"), headers=auth(user))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    events = [
        e
        for e in (await client.get(runs_url(sid, run["id"], "/stream"), headers=auth(user))).text.split(
            "\n\n"
        )
        if e
    ]
    assert "event: error" in events[-1] and "run_cancelled" in events[-1]
    fake_llm.token_delay = 0
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "after"}, headers=auth(user))
    assert r.status_code == 200, r.text
    items = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    assert [m["content"] for m in items if m["role"] == "user"] == ["after"]


async def test_a_cancel_through_another_instance_stops_the_run(settings, client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.2
    run = await start(client, user, sid, " ".join(f"w{i}" for i in range(60)))
    async with running_app(settings) as other, asgi_client(other) as other_client:
        r = await other_client.post(runs_url(sid, run["id"], "/cancel"), headers=auth(user))
        assert r.status_code == 202, r.text
        # The instance running it looks every RUN_CANCEL_POLL_SECONDS (1 s).
        done = await wait_finished(other_client, user, sid, run["id"], within=5)
    assert done["status"] == "cancelled"
    fake_llm.token_delay = 0
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "free"}, headers=auth(user))
    assert r.status_code == 200, r.text


async def test_a_run_at_shutdown_ends_and_releases_its_lease(settings, client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.2
    async with running_app(settings) as doomed, asgi_client(doomed) as doomed_client:
        run = await start(doomed_client, user, sid, " ".join(f"w{i}" for i in range(60)))
        await asyncio.sleep(0.5)
    done = (await client.get(runs_url(sid, run["id"]), headers=auth(user))).json()
    assert done["status"] in {"error", "cancelled"} and done["finished_at"], done
    fake_llm.token_delay = 0
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "free"}, headers=auth(user))
    assert r.status_code == 200, r.text


async def test_another_users_runs_are_404(client, user):
    sid = await new_session(client, user)
    run = await start(client, user, sid, "mine")
    await wait_finished(client, user, sid, run["id"])
    bob = await register(client)
    bob_sid = await new_session(client, bob)
    for method, url in [
        ("GET", runs_url(sid, run["id"])),
        ("GET", runs_url(sid)),
        ("GET", runs_url(sid, run["id"], "/stream")),
        ("POST", runs_url(sid, run["id"], "/cancel")),
        ("GET", runs_url(bob_sid, run["id"])),  # bob's session, alice's run
        ("GET", runs_url(sid, str(uuid.uuid4()))),
    ]:
        assert_error(await client.request(method, url, headers=auth(bob)), 404, "not_found")
    r = await client.post(runs_url(sid), json={"message": "x"}, headers=auth(bob))
    assert_error(r, 404, "not_found")
    other_sid = await new_session(client, user)
    assert_error(await client.get(runs_url(other_sid, run["id"]), headers=auth(user)), 404, "not_found")


async def test_bad_input_is_422(client, user):
    sid = await new_session(client, user)
    for body in [{"message": "   "}, {}, {"message": "x", "replace_last_turn": True}, {"message": "a\x00b"}]:
        r = await client.post(runs_url(sid), json=body, headers=auth(user))
        assert_error(r, 422)
    run = await start(client, user, sid, "ok")
    await wait_finished(client, user, sid, run["id"])
    url = runs_url(sid, run["id"], "/stream")
    assert_error(await client.get(url, headers={**auth(user), "Last-Event-ID": "abc"}), 422)
    assert_error(await client.get(url, headers=auth(user), params={"after": -1}), 422)
    assert_error(await client.get(runs_url(sid), headers=auth(user), params={"limit": 0}), 422)
    assert (await client.post(runs_url(sid), json={"message": "x"})).status_code == 401


async def test_the_sweeper_ends_an_orphaned_run_and_drops_old_events(app, client, user, settings):
    sid = await new_session(client, user)
    me = (await client.get("/api/v1/auth/me", headers=auth(user))).json()
    orphan, old = uuid.uuid4(), uuid.uuid4()
    async with app.state.runtime.db.engine.begin() as conn:
        for run_id, status, finished in [
            (orphan, "running", None),
            (old, "success", "now() - interval '2 days'"),
        ]:
            await conn.execute(
                text(
                    "INSERT INTO run (id, session_id, user_id, status, message, created_at, finished_at)"
                    f" VALUES (:id, :s, :u, :status, 'm', now(), {finished or 'NULL'})"
                ),
                {"id": run_id, "s": sid, "u": me["id"], "status": status},
            )
            await conn.execute(
                text("INSERT INTO run_event (run_id, seq, event, data) VALUES (:id, 1, 'token', '{}')"),
                {"id": run_id},
            )
    await housekeeping.sweep(app.state.runtime.db.pool, settings)
    lost = (await client.get(runs_url(sid, str(orphan)), headers=auth(user))).json()
    assert lost["status"] == "error" and lost["error"] == "run_lost" and lost["finished_at"]
    body = (await client.get(runs_url(sid, str(orphan), "/stream"), headers=auth(user))).text
    assert body.count("event: ") == 2 and "id: 2\nevent: error" in body and "run_lost" in body
    async with app.state.runtime.db.engine.connect() as conn:
        left = (
            await conn.execute(text("SELECT count(*) FROM run_event WHERE run_id = :id"), {"id": old})
        ).scalar_one()
    assert left == 0


async def test_a_failed_run_ends_as_error_with_its_code_and_frees_the_session(client, user, fake_llm):
    from tests.fake_llm import Fault

    sid = await new_session(client, user)
    fake_llm.script(Fault(status=400))  # a rejection is not retried
    run = await start(client, user, sid, "lost")
    done = await wait_finished(client, user, sid, run["id"])
    assert done["status"] == "error" and done["error"] == "agent_error" and done["reply_message_id"] is None
    body = (await client.get(runs_url(sid, run["id"], "/stream"), headers=auth(user))).text
    last = body.strip().split("\n\n")[-1]
    assert "event: error" in last and '"error": "agent_error"' in last and '"detail"' in last
    items = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    assert items == []
    run = await start(client, user, sid, "kept")
    assert (await wait_finished(client, user, sid, run["id"]))["status"] == "success"


async def test_a_stream_ends_after_its_longest_and_resumes_where_it_ended(pg_url, fake_llm):
    from tests.conftest import make_settings

    settings = make_settings(pg_url, fake_llm, run_stream_max_seconds=1)
    async with running_app(settings) as app, asgi_client(app) as client:
        user = await register(client)
        sid = await new_session(client, user)
        fake_llm.token_delay = 0.15
        run = await start(client, user, sid, " ".join(f"w{i}" for i in range(20)))
        async with app.state.runtime.db.engine.connect() as conn:
            holder = (
                await conn.execute(text("SELECT t.run_id FROM thread t WHERE t.session_id = :s"), {"s": sid})
            ).scalar_one()
        assert str(holder) == run["id"]  # the run and its lease share an id
        async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=15) as http:
            cut = await stream(http, user, sid, run["id"])
            assert cut and cut[-1][1] == "token"  # ended by RUN_STREAM_MAX_SECONDS, mid-run
            rest: list = []
            for _ in range(10):  # bounded: each read lasts at most a second
                last = (rest or cut)[-1][0]
                rest += await stream(http, user, sid, run["id"], headers={"Last-Event-ID": str(last)})
                if rest and rest[-1][1] == "done":
                    break
            replay = await stream(http, user, sid, run["id"])
    assert cut + rest == replay and replay[-1][1] == "done"


async def test_a_run_whose_lease_expired_is_lost_within_one_poll(app, client, user):
    """A crashed process stops renewing its lease: once it expires the run is marked lost at the next
    poll (RUN_LOST_POLL_SECONDS), well inside the crash window, with no sweep needed."""
    sid = await new_session(client, user)
    me = (await client.get("/api/v1/auth/me", headers=auth(user))).json()
    crashed, alive = uuid.uuid4(), uuid.uuid4()
    other = await new_session(client, user)
    async with app.state.runtime.db.engine.begin() as conn:
        for run_id, session_id, expires in [
            (crashed, sid, "- interval '1 second'"),
            (alive, other, "+ interval '10 seconds'"),
        ]:
            await conn.execute(
                text(
                    "INSERT INTO run (id, session_id, user_id, status, message, created_at, started_at)"
                    " VALUES (:id, :s, :u, 'running', 'm', now(), now())"
                ),
                {"id": run_id, "s": session_id, "u": me["id"]},
            )
            await conn.execute(
                text(
                    f"UPDATE thread SET run_id = :id, lease_expires_at = now() {expires}"
                    " WHERE session_id = :s"
                ),
                {"id": run_id, "s": session_id},
            )
    assert await watch.mark_lost(app.state.runtime) == 1
    lost = (await client.get(runs_url(sid, str(crashed)), headers=auth(user))).json()
    assert lost["status"] == "error" and lost["error"] == "run_lost"
    body = (await client.get(runs_url(sid, str(crashed), "/stream"), headers=auth(user))).text
    assert "run_lost" in body
    # A run whose process still renews its lease is left alone.
    assert (await client.get(runs_url(other, str(alive)), headers=auth(user))).json()["status"] == "running"
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE thread SET run_id = NULL, lease_expires_at = NULL WHERE session_id = :s"),
            {"s": other},
        )
        await conn.execute(
            text("UPDATE run SET status = 'cancelled', finished_at = now() WHERE id = :id"), {"id": alive}
        )
