"""Double texting (reject, enqueue, interrupt, rollback), tool calls waiting for approval, forks and
history: across two app instances on one database where it matters."""

import asyncio

import httpx
from sqlalchemy import text

from app.services.chat import approvals
from tests.api.test_runs import runs_url, stream, wait_finished
from tests.conftest import asgi_client, assert_error, auth, new_session, running_app, serve

LONG = " ".join(f"w{i}" for i in range(40))
REMEMBER = '[tool:remember_this:{"fact": "Drinks green tea"}]'


async def post_run(client: httpx.AsyncClient, user, sid: str, body: dict) -> dict:
    r = await client.post(runs_url(sid), json=body, headers=auth(user))
    assert r.status_code == 202, r.text
    return r.json()


async def wait_status(client, user, sid: str, run_id: str, status: str, within: float = 10) -> dict:
    for _ in range(int(within / 0.05)):  # bounded
        run = (await client.get(runs_url(sid, run_id), headers=auth(user))).json()
        if run["status"] == status:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {status}: {run}")


async def transcript(client, user, sid: str) -> list[tuple[str, str]]:
    items = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    return [(m["role"], m["content"]) for m in items]


async def test_reject_refuses_a_second_message_while_the_first_runs(client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.05
    first = await post_run(client, user, sid, {"message": LONG})
    r = await client.post(
        runs_url(sid), json={"message": "second", "multitask": "reject"}, headers=auth(user)
    )
    assert_error(r, 409, "thread_busy")
    await wait_finished(client, user, sid, first["id"])


async def test_enqueue_runs_the_second_message_after_the_first_from_another_instance(
    settings, client, user, fake_llm
):
    sid = await new_session(client, user)
    async with running_app(settings) as other, asgi_client(other) as other_client:
        fake_llm.token_delay = 0.05
        first = await post_run(client, user, sid, {"message": "first " + LONG})
        queued = await post_run(other_client, user, sid, {"message": "second", "multitask": "enqueue"})
        assert queued["status"] == "pending" and queued["multitask"] == "enqueue"
        done = await wait_finished(other_client, user, sid, queued["id"], within=15)
    assert done["status"] == "success"
    assert (await wait_finished(client, user, sid, first["id"]))["status"] == "success"
    users = [c for role, c in await transcript(client, user, sid) if role == "user"]
    assert users == ["first " + LONG, "second"]


async def test_the_queue_is_bounded_and_a_queued_run_can_be_cancelled(client, user, fake_llm, settings):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.05
    first = await post_run(client, user, sid, {"message": LONG})
    queued = [
        await post_run(client, user, sid, {"message": f"q{i}", "multitask": "enqueue"})
        for i in range(settings.run_queue_max)
    ]
    r = await client.post(
        runs_url(sid), json={"message": "one more", "multitask": "enqueue"}, headers=auth(user)
    )
    assert_error(r, 409, "queue_full")
    r = await client.post(runs_url(sid, queued[0]["id"], "/cancel"), headers=auth(user))
    assert r.status_code == 202 and r.json()["status"] == "cancelled", r.text
    r = await client.post(runs_url(sid, first["id"], "/cancel"), headers=auth(user))
    assert r.status_code == 202
    for run in queued[1:]:
        assert (await wait_finished(client, user, sid, run["id"], within=15))["status"] == "success"
    users = [c for role, c in await transcript(client, user, sid) if role == "user"]
    assert users == [f"q{i}" for i in range(1, settings.run_queue_max)]


async def test_interrupt_stops_the_current_run_and_keeps_what_it_had_said(client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.1
    first = await post_run(client, user, sid, {"message": LONG})
    await asyncio.sleep(0.6)  # a few tokens in
    fake_llm.token_delay = 0
    second = await post_run(client, user, sid, {"message": "never mind", "multitask": "interrupt"})
    assert second["status"] == "pending"
    stopped = await wait_finished(client, user, sid, first["id"])
    assert stopped["status"] == "cancelled" and stopped["error"] == "superseded"
    assert (await wait_finished(client, user, sid, second["id"]))["status"] == "success"
    messages = await transcript(client, user, sid)
    assert [role for role, _ in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0][1] == LONG and messages[2:] == [
        ("user", "never mind"),
        ("assistant", "Echo: never mind"),
    ]
    kept = messages[1][1]
    assert kept and f"Echo: {LONG}".startswith(kept) and kept != f"Echo: {LONG}"  # cut short
    assert stopped["reply_message_id"] is not None
    # The model saw the kept part of the first turn before the second message.
    last = fake_llm.chat_requests[-1]["messages"]
    assert any(m.get("content") == kept for m in last if m["role"] == "assistant")


async def test_rollback_stops_the_current_run_and_leaves_no_trace(client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.1
    first = await post_run(client, user, sid, {"message": LONG})
    await asyncio.sleep(0.4)
    fake_llm.token_delay = 0
    second = await post_run(client, user, sid, {"message": "start over", "multitask": "rollback"})
    stopped = await wait_finished(client, user, sid, first["id"])
    assert stopped["status"] == "cancelled" and stopped["error"] == "rolled_back"
    assert (await wait_finished(client, user, sid, second["id"]))["status"] == "success"
    assert await transcript(client, user, sid) == [("user", "start over"), ("assistant", "Echo: start over")]
    last = fake_llm.chat_requests[-1]["messages"]
    assert not any(LONG in str(m.get("content")) for m in last)


async def test_a_tool_call_waits_for_approval_then_runs(app, client, user):
    sid = await new_session(client, user)
    run = await post_run(client, user, sid, {"message": f"remember {REMEMBER}"})
    waiting = await wait_status(client, user, sid, run["id"], "interrupted")
    [call] = waiting["interrupt"]["tool_calls"]
    assert call["name"] == "remember_this" and call["args"] == {"fact": "Drinks green tea"}
    assert waiting["interrupt"]["expires_at"]
    # While it waits it holds no lease: the session is not busy for reads, and the stream has ended.
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=15) as http:
        events = await stream(http, user, sid, run["id"])
        assert events[-1][1] == "interrupt" and events[-1][2]["tool_calls"] == [call]
        r = await client.post(
            runs_url(sid, run["id"], "/resume"), json={"decision": "approve"}, headers=auth(user)
        )
        assert r.status_code == 202 and r.json()["status"] == "running", r.text
        rest = await stream(http, user, sid, run["id"], headers={"Last-Event-ID": str(events[-1][0])})
    assert [seq for seq, _, _ in events + rest] == list(range(1, len(events) + len(rest) + 1))
    assert rest[-1][1] == "done" and "Remembered: Drinks green tea" in rest[-1][2]["reply"]
    tool = {
        "name": "remember_this",
        "args": {"fact": "Drinks green tea"},
        "result": "Remembered: Drinks green tea",
    }
    assert [e[2] for e in rest if e[1] == "tool"] == [{**tool, "is_error": False}]
    assert rest[-1][2]["tool_calls"] == [{**tool, "is_error": False}] and rest[-1][2]["input_tokens"] > 0
    done = await wait_finished(client, user, sid, run["id"])
    assert done["status"] == "success" and done["interrupt"] is None
    memories = (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]
    assert "Drinks green tea" in [m["text"] for m in memories]
    r = await client.post(
        runs_url(sid, run["id"], "/resume"), json={"decision": "approve"}, headers=auth(user)
    )
    assert_error(r, 409, "run_not_waiting")


async def test_an_edited_call_runs_with_the_new_args(client, user):
    sid = await new_session(client, user)
    run = await post_run(client, user, sid, {"message": f"remember {REMEMBER}"})
    await wait_status(client, user, sid, run["id"], "interrupted")
    url = runs_url(sid, run["id"], "/resume")
    for bad in [
        {"decision": "edit"},
        {"decision": "edit", "args": {"wrong": 1}},
        {"decision": "approve", "args": {"fact": "x"}},
        {"decision": "maybe"},
    ]:
        assert_error(await client.post(url, json=bad, headers=auth(user)), 422, "validation_error")
    edit = {"decision": "edit", "args": {"fact": "Drinks black coffee"}}
    assert (await client.post(url, json=edit, headers=auth(user))).status_code == 202
    assert (await wait_finished(client, user, sid, run["id"]))["status"] == "success"
    memories = [m["text"] for m in (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]]
    assert "Drinks black coffee" in memories and "Drinks green tea" not in memories


async def test_a_rejected_call_is_not_run_and_the_model_hears_why(client, user, fake_llm):
    sid = await new_session(client, user)
    run = await post_run(client, user, sid, {"message": f"remember {REMEMBER}"})
    await wait_status(client, user, sid, run["id"], "interrupted")
    body = {"decision": "reject", "reason": "not a fact about me"}
    assert (
        await client.post(runs_url(sid, run["id"], "/resume"), json=body, headers=auth(user))
    ).status_code == 202
    done = await wait_finished(client, user, sid, run["id"])
    assert done["status"] == "success"
    tool_result = fake_llm.chat_requests[-1]["messages"][-1]
    assert tool_result["role"] == "tool" and "not a fact about me" in tool_result["content"]
    assert (await client.get("/api/v1/memories", headers=auth(user))).json()["items"] == []


async def test_a_new_message_or_the_timeout_drops_a_waiting_approval(app, client, user):
    sid = await new_session(client, user)
    run = await post_run(client, user, sid, {"message": f"remember {REMEMBER}"})
    await wait_status(client, user, sid, run["id"], "interrupted")
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "forget it"}, headers=auth(user))
    assert r.status_code == 200, r.text
    dropped = (await client.get(runs_url(sid, run["id"]), headers=auth(user))).json()
    assert dropped["status"] == "cancelled" and dropped["error"] == "approval_dropped"
    messages = await transcript(client, user, sid)
    assert messages[0] == ("user", f"remember {REMEMBER}")
    assert "remember_this" in messages[1][1] and "not run" in messages[1][1]
    assert messages[2:] == [("user", "forget it"), ("assistant", "Echo: forget it")]
    r = await client.post(
        runs_url(sid, run["id"], "/resume"), json={"decision": "approve"}, headers=auth(user)
    )
    assert_error(r, 409, "run_not_waiting")

    late = await post_run(client, user, sid, {"message": f"again {REMEMBER}"})
    await wait_status(client, user, sid, late["id"], "interrupted")
    rt = app.state.runtime
    async with rt.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE run SET expires_at = now() - interval '1 second' WHERE id = :id"), {"id": late["id"]}
        )
    r = await client.post(
        runs_url(sid, late["id"], "/resume"), json={"decision": "approve"}, headers=auth(user)
    )
    assert_error(r, 409, "run_not_waiting")
    assert await approvals.expire(rt) >= 1
    expired = (await client.get(runs_url(sid, late["id"]), headers=auth(user))).json()
    assert expired["status"] == "cancelled" and expired["error"] == "approval_expired"
    assert (await client.get("/api/v1/memories", headers=auth(user))).json()["items"] == []


async def test_a_chat_turn_that_needs_approval_answers_interrupted(client, user):
    sid = await new_session(client, user)
    r = await client.post(
        f"/api/v1/sessions/{sid}/chat", json={"message": f"please {REMEMBER}"}, headers=auth(user)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "interrupted" and body["interrupt"]["tool_calls"][0]["name"] == "remember_this"
    run_id = body["run_id"]
    r = await client.post(runs_url(sid, run_id, "/resume"), json={"decision": "approve"}, headers=auth(user))
    assert r.status_code == 202, r.text
    assert (await wait_finished(client, user, sid, run_id))["status"] == "success"


async def test_history_lists_turns_and_a_fork_replaces_the_turns_from_there(client, user, fake_llm):
    sid = await new_session(client, user)
    for word in ("one", "two", "three"):
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": word}, headers=auth(user))
        assert r.status_code == 200, r.text
    page = (await client.get(f"/api/v1/sessions/{sid}/history", headers=auth(user))).json()
    assert page["total"] == 3 and [t["message"] for t in page["items"]] == ["three", "two", "one"]
    assert [t["reply"] for t in page["items"]] == ["Echo: three", "Echo: two", "Echo: one"]
    assert page["items"][0]["checkpoint_id"] and page["items"][1]["checkpoint_id"] is None
    older = (
        await client.get(
            f"/api/v1/sessions/{sid}/history",
            headers=auth(user),
            params={"limit": 1, "before": page["items"][0]["turn_id"]},
        )
    ).json()
    assert [t["message"] for t in older["items"]] == ["two"] and older["next_before"] == older["items"][0][
        "turn_id"
    ]

    two = page["items"][1]["turn_id"]
    run = await post_run(client, user, sid, {"message": "deux", "from_turn": two})
    done = await wait_finished(client, user, sid, run["id"])
    assert done["status"] == "success" and done["from_turn"] == two
    assert await transcript(client, user, sid) == [
        ("user", "one"), ("assistant", "Echo: one"), ("user", "deux"), ("assistant", "Echo: deux"),
    ]  # fmt: skip
    seen = [m.get("content") for m in fake_llm.chat_requests[-1]["messages"]]
    assert "one" in seen and "deux" in seen and "two" not in seen and "three" not in seen
    # Regenerate through a fork: no message sends the turn's own again.
    last = (await client.get(f"/api/v1/sessions/{sid}/history", headers=auth(user))).json()["items"][0]
    run = await post_run(client, user, sid, {"from_turn": last["turn_id"]})
    assert (await wait_finished(client, user, sid, run["id"]))["message"] == "deux"
    assert [c for r_, c in await transcript(client, user, sid) if r_ == "user"] == ["one", "deux"]
    r = await client.post(runs_url(sid), json={"message": "x", "from_turn": two}, headers=auth(user))
    assert_error(r, 404, "turn_not_found")  # that turn was replaced


async def test_a_streamed_run_follows_on_disconnect(app, client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.1
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=15) as http:
        ids = {}
        for choice in ("continue", "cancel"):
            body = {"message": LONG, "stream": True, "on_disconnect": choice, "multitask": "enqueue"}
            async with http.stream("POST", runs_url(sid), json=body, headers=auth(user)) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                ids[choice] = r.headers["content-location"].rsplit("/", 1)[1]
                async for line in r.aiter_lines():
                    if line.startswith("event: token"):
                        break  # leave mid-run
            if choice == "continue":
                kept = await wait_finished(client, user, sid, ids[choice], within=15)
                assert kept["status"] == "success" and kept["reply_message_id"]
    fake_llm.token_delay = 0
    gone = await wait_finished(client, user, sid, ids["cancel"], within=10)
    assert gone["status"] == "cancelled" and gone["reply_message_id"] is None
