"""LangGraph's Agent Protocol, driven by LangGraph's own Python client (langgraph-sdk) over real HTTP
with our bearer tokens: assistants, threads, state and history, runs streamed, waited for, joined,
queued, refused, cancelled, interrupted for approval and resumed, forks, and another user's 404s."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import AuthenticationError, ConflictError, NotFoundError

from app.services.protocol.assistants import ASSISTANT_ID
from tests.conftest import asgi_client, auth, make_settings, register, running_app, serve

REMEMBER = 'remember [tool:remember_this:{"fact": "likes tea"}]'
LONG = " ".join(f"w{i}" for i in range(40))


@pytest.fixture(scope="module")
async def base(app) -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url


@asynccontextmanager
async def sdk(base: str, user: dict[str, str]) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=base, api_key=None, headers=auth(user))
    try:
        yield client
    finally:
        await client.aclose()


def said(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def contents(values: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["type"], m["content"]) for m in values["messages"]]


async def run_status(client: LangGraphClient, tid: str, rid: str, wanted: str, within: float = 10) -> dict:
    async with asyncio.timeout(within):
        while (run := await client.runs.get(tid, rid))["status"] != wanted:
            await asyncio.sleep(0.05)
    return dict(run)


async def test_assistants_info_and_the_token_as_api_key(base, client, user):
    async with sdk(base, user) as lg:
        [found] = await lg.assistants.search(graph_id="agent", limit=10)
        assert found["assistant_id"] == str(ASSISTANT_ID) == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
        assert found["graph_id"] == found["name"] == "agent" and found["config"] == {}
        assert await lg.assistants.search(graph_id="other") == []
        assert await lg.assistants.get("agent") == await lg.assistants.get(str(ASSISTANT_ID)) == found
        with pytest.raises(NotFoundError):
            await lg.assistants.get(str(uuid.uuid4()))
    token = user["Authorization"].removeprefix("Bearer ")
    as_key = get_client(url=base, api_key=token)  # sent as x-api-key, as the JS client does
    assert (await as_key.assistants.get("agent"))["assistant_id"] == str(ASSISTANT_ID)
    await as_key.aclose()
    nobody = get_client(url=base, api_key=None)
    with pytest.raises(AuthenticationError):
        await nobody.threads.search()
    await nobody.aclose()
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.get("/info")  # public: clients probe it before they sign in
        assert r.status_code == 200 and r.json()["version"]


async def test_threads_are_sessions_created_searched_read_and_deleted(base, client, user):
    marker = uuid.uuid4().hex
    async with sdk(base, user) as lg:
        thread = await lg.threads.create(metadata={"marker": marker})
        tid = thread["thread_id"]
        assert thread["status"] == "idle" and thread["metadata"] == {"marker": marker}
        assert thread["values"] is None and thread["interrupts"] == {}
        r = await client.get(f"/api/v1/sessions/{tid}", headers=auth(user))  # the same session
        assert r.status_code == 200 and r.json()["name"] == "New chat"
        state = await lg.threads.get_state(tid)
        assert state["checkpoint"] is None and state["values"] == {} and state["next"] == []
        assert await lg.threads.get_history(tid) == []
        # A thread list of the agent's threads shows a thread once a run was started on it.
        assert await lg.threads.search(metadata={"marker": marker, "graph_id": "agent"}) == []
        await lg.runs.wait(tid, "agent", input=said("first words"))
        [listed] = await lg.threads.search(metadata={"marker": marker, "graph_id": "agent"}, limit=100)
        assert listed["thread_id"] == tid and listed["status"] == "idle"
        assert listed["metadata"]["assistant_id"] == str(ASSISTANT_ID)
        assert contents(listed["values"]) == [("human", "first words")]  # a list shows the first message
        got = await lg.threads.get(tid)
        assert contents(got["values"]) == [("human", "first words"), ("ai", "Echo: first words")]
        assert [t["thread_id"] for t in await lg.threads.search(ids=[tid], status="busy")] == []
        # A thread id of the client's choosing, once.
        own = str(uuid.uuid4())
        assert (await lg.threads.create(thread_id=own))["thread_id"] == own
        with pytest.raises(ConflictError):
            await lg.threads.create(thread_id=own)
        assert (await lg.threads.create(thread_id=own, if_exists="do_nothing"))["thread_id"] == own
        newest = await lg.threads.search(limit=2)
        assert [t["thread_id"] for t in newest] == [own, tid]
        await lg.threads.delete(tid)
        with pytest.raises(NotFoundError):
            await lg.threads.get(tid)
        r = await client.get(f"/api/v1/sessions/{tid}", headers=auth(user))
        assert r.status_code == 404


async def test_a_streamed_run_sends_tokens_and_values_then_resumes_from_an_event_id(base, user):
    created: list[Any] = []
    async with sdk(base, user) as lg:
        tid = (await lg.threads.create())["thread_id"]
        parts = [
            part
            async for part in lg.runs.stream(
                tid,
                "agent",
                input=said("hello protocol"),
                stream_mode=["values", "messages-tuple"],
                on_run_created=created.append,
            )
        ]
        events = [p.event for p in parts]
        assert events[0] == "metadata" and events[-1] == "end" and "updates" not in events
        run_id = parts[0].data["run_id"]
        assert [c["run_id"] for c in created] == [run_id]
        chunks = [p.data for p in parts if p.event == "messages"]
        assert all(chunk["type"] == "AIMessageChunk" and meta["run_id"] == run_id for chunk, meta in chunks)
        assert "".join(chunk["content"] for chunk, _ in chunks) == "Echo: hello protocol"
        assert len({chunk["id"] for chunk, _ in chunks}) == 1
        values = [p.data for p in parts if p.event == "values"]
        assert contents(values[0]) == [("human", "hello protocol")]
        assert contents(values[-1]) == [("human", "hello protocol"), ("ai", "Echo: hello protocol")]
        ids = [int(p.id) for p in parts if p.id is not None]
        assert ids == sorted(ids) and ids
        # A join replays the run from its start, or from after an event id.
        replay = [p async for p in lg.runs.join_stream(tid, run_id, stream_mode=["values", "messages-tuple"])]
        assert [p.data for p in replay if p.event == "messages"] == chunks and replay[-1].event == "end"
        rest = [p async for p in lg.runs.join_stream(tid, run_id, last_event_id=str(ids[0]))]
        assert "".join(p.data[0]["content"] for p in rest if p.event == "messages") == "".join(
            chunk["content"] for chunk, _ in chunks[1:]
        )
        assert [p.event for p in rest][-3:] == ["updates", "values", "end"]  # all modes by default
        # The thread's state: the last turn under its real checkpoint, the one before under a synthetic id.
        state = await lg.threads.get_state(tid)
        assert contents(state["values"]) == contents(values[-1])
        assert state["checkpoint"]["checkpoint_id"] and not state["checkpoint"]["checkpoint_id"].startswith(
            "0000"
        )
        history = await lg.threads.get_history(tid)
        assert [h["checkpoint"] for h in history] == [state["checkpoint"], state["parent_checkpoint"]]
        assert history[1]["values"] == {"messages": []} and history[1]["parent_checkpoint"] is None
        again = await lg.threads.get_state(tid, checkpoint_id=history[1]["checkpoint"]["checkpoint_id"])
        assert again["values"] == {"messages": []}


def parse_sse(text: str) -> list[tuple[str, Any, str | None]]:
    """(event, data, id) of each event, checking the framing both SDKs need: one `data:` line of JSON
    each (`null` when empty), never an empty one."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) <= {"event", "data", "id"} and fields["data"], block
        events.append((fields["event"], json.loads(fields["data"]), fields.get("id")))
    return events


async def test_what_use_stream_sends_works_as_agent_chat_ui_sends_it(base, user):
    token = user["Authorization"].removeprefix("Bearer ")
    async with httpx.AsyncClient(base_url=base, headers={"X-Api-Key": token}, timeout=15) as http:
        tid = (await http.post("/threads", json={"metadata": {}})).json()["thread_id"]
        body = {
            "input": {
                "messages": [{"id": "client-1", "type": "human", "content": [{"type": "text", "text": "hi"}]}]
            },
            "stream_mode": ["values", "messages-tuple", "custom"],
            "stream_subgraphs": True,
            "stream_resumable": True,
            "assistant_id": "agent",
            "on_disconnect": "continue",
        }
        r = await http.post(f"/threads/{tid}/runs/stream", json=body)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.text)
        run_id = events[0][1]["run_id"]
        assert r.headers["content-location"] == f"/threads/{tid}/runs/{run_id}"
        assert events[1][0] == "values" and events[1][1]["messages"][0]["id"] == "client-1"
        assert events[-1] == ("end", None, None)
        [head] = (await http.post(f"/threads/{tid}/history", json={"limit": 10})).json()[:1]
        # The next submit names the head it saw: the thread goes on from there.
        body["checkpoint"] = {**head["checkpoint"], "thread_id": None}
        body["input"]["messages"][0].update(id="client-2", content="again")
        r = await http.post(f"/threads/{tid}/runs/stream", json=body)
        values = [data for event, data, _ in parse_sse(r.text) if event == "values"][-1]
        assert contents(values) == [
            ("human", "hi"),
            ("ai", "Echo: hi"),
            ("human", "again"),
            ("ai", "Echo: again"),
        ]
        found = (
            await http.post(
                "/threads/search", json={"metadata": {"graph_id": "agent"}, "limit": 100, "offset": 0}
            )
        ).json()
        assert [t["values"]["messages"][0]["content"] for t in found if t["thread_id"] == tid] == ["hi"]
        # reconnectOnMount: the whole run again, modes as a JSON string.
        r = await http.get(
            f"/threads/{tid}/runs/{run_id}/stream",
            params={"cancel_on_disconnect": "0", "stream_mode": '["values"]'},
            headers={"Last-Event-ID": "-1"},
        )
        replay = parse_sse(r.text)
        assert {event for event, _, _ in replay} == {"metadata", "values", "end"}
        assert contents(replay[-2][1]) == [("human", "hi"), ("ai", "Echo: hi")]


async def test_wait_create_join_get_and_list(base, user):
    async with sdk(base, user) as lg:
        tid = (await lg.threads.create())["thread_id"]
        final = await lg.runs.wait(tid, "agent", input=said("one"))
        assert contents(final) == [("human", "one"), ("ai", "Echo: one")]
        run = await lg.runs.create(
            tid,
            "agent",
            input={"messages": [{"type": "human", "content": [{"type": "text", "text": "two"}]}]},
        )
        assert run["status"] in ("pending", "running") and run["assistant_id"] == str(ASSISTANT_ID)
        joined = await lg.runs.join(tid, run["run_id"])
        assert contents(joined)[-2:] == [("human", "two"), ("ai", "Echo: two")]
        assert (await lg.runs.get(tid, run["run_id"]))["status"] == "success"
        runs = await lg.runs.list(tid)
        assert runs[0]["run_id"] == run["run_id"] and len(runs) == 2
        assert [r["run_id"] for r in await lg.runs.list(tid, limit=1, offset=1)] != [run["run_id"]]
        assert await lg.runs.list(tid, status="pending") == []
        with pytest.raises(httpx.HTTPStatusError) as raised:  # wait and join raise httpx's own error
            await lg.runs.wait(tid, "another-graph", input=said("x"))
        assert raised.value.response.status_code == 404
        with pytest.raises(NotFoundError):
            await lg.runs.get(tid, str(uuid.uuid4()))


async def test_cancel_and_a_client_that_leaves_with_on_disconnect_cancel(base, user, fake_llm):
    fake_llm.token_delay = 0.05
    async with sdk(base, user) as lg:
        tid = (await lg.threads.create())["thread_id"]
        run = await lg.runs.create(tid, "agent", input=said(LONG))
        await run_status(lg, tid, run["run_id"], "running")
        assert (await lg.threads.get(tid))["status"] == "busy"
        assert await lg.runs.cancel(tid, run["run_id"], wait=True) is None
        stopped = await lg.runs.get(tid, run["run_id"])
        assert stopped["status"] == "interrupted" and stopped["cancel_reason"] == "cancelled"
        assert (await lg.runs.join(tid, run["run_id"])) == {}  # nothing of it was kept
        # A stream asked to cancel its run when the client leaves.
        stream = lg.runs.stream(
            tid, "agent", input=said(LONG), stream_mode="messages-tuple", on_disconnect="cancel"
        )
        async for part in stream:
            if part.event == "metadata":
                left = part.data["run_id"]
            if part.event == "messages":
                break
        await stream.aclose()
        await run_status(lg, tid, left, "interrupted")
        assert (await lg.threads.get(tid))["status"] == "idle"


async def test_multitask_enqueue_runs_after_and_reject_is_a_conflict(base, client, user, fake_llm):
    fake_llm.token_delay = 0.05
    async with sdk(base, user) as lg:
        tid = (await lg.threads.create())["thread_id"]
        first = await lg.runs.create(tid, "agent", input=said("first " + LONG))
        second = await lg.runs.create(tid, "agent", input=said("second"), multitask_strategy="enqueue")
        assert second["status"] == "pending" and second["multitask_strategy"] == "enqueue"
        with pytest.raises(ConflictError):
            await lg.runs.create(tid, "agent", input=said("third"), multitask_strategy="reject")
        with pytest.raises(ConflictError):
            async for _ in lg.runs.stream(tid, "agent", input=said("third"), multitask_strategy="reject"):
                pass
        fake_llm.token_delay = 0
        async with asyncio.timeout(15):
            final = await lg.runs.join(tid, second["run_id"])
        assert [c for t, c in contents(final) if t == "human"] == ["first " + LONG, "second"]
        assert (await lg.runs.get(tid, first["run_id"]))["status"] == "success"


async def test_an_interrupt_waits_for_approval_then_resumes_to_the_end(base, client, user):
    async with sdk(base, user) as lg:
        tid = (await lg.threads.create())["thread_id"]
        parts = [
            p
            async for p in lg.runs.stream(
                tid, "agent", input=said(REMEMBER), stream_mode=["values", "updates"]
            )
        ]
        assert parts[-1].event == "end"
        [interrupt] = next(
            p.data["__interrupt__"] for p in parts if p.event == "updates" and "__interrupt__" in p.data
        )
        assert parts[-2].event == "values" and parts[-2].data["__interrupt__"] == [interrupt]
        [call] = interrupt["value"]["tool_calls"]
        assert call["name"] == "remember_this" and call["args"] == {"fact": "likes tea"}
        ai = parts[-2].data["messages"][-1]
        assert ai["type"] == "ai" and ai["tool_calls"][0]["id"] == call["id"]
        # The thread waits: its state names the pending task and its interrupt.
        thread = await lg.threads.get(tid)
        assert thread["status"] == "interrupted" and list(thread["interrupts"].values()) == [[interrupt]]
        state = await lg.threads.get_state(tid)
        assert state["next"] == ["approval"] and state["tasks"][0]["interrupts"] == [interrupt]
        assert state["interrupts"] == [interrupt]
        assert (await lg.threads.get_history(tid, limit=1))[0]["checkpoint"] == state["checkpoint"]
        run_id = parts[0].data["run_id"]
        assert (await lg.runs.join(tid, run_id))["__interrupt__"] == [interrupt]
        # Resumed as useStream does it (an empty input beside the command); the same run goes on.
        resumed = [
            p
            async for p in lg.runs.stream(
                tid,
                "agent",
                input={},
                command={"resume": {"decision": "approve"}},
                stream_mode=["values", "updates"],
            )
        ]
        assert resumed[0].data["run_id"] == run_id and resumed[-1].event == "end"
        assert any(p.event == "updates" and "tools" in p.data for p in resumed)
        # The approved call's result follows the call that waited, once.
        after_tool = next(p.data["messages"] for p in resumed[2:] if p.event == "values")
        assert [m["type"] for m in after_tool] == ["human", "ai", "tool"]
        assert after_tool[2]["tool_call_id"] == call["id"] == after_tool[1]["tool_calls"][0]["id"]
        final = resumed[-2].data
        assert final["messages"][-1]["content"] == "The tool said: Remembered: likes tea"
        # The transcript keeps the approved call: the state shows it with its result.
        assert [m["type"] for m in final["messages"]] == ["human", "ai", "tool", "ai"]
        assert final["messages"][2]["content"] == "Remembered: likes tea"
        assert "__interrupt__" not in final
        assert (await lg.runs.get(tid, run_id))["status"] == "success"
        assert (await lg.threads.get(tid))["status"] == "idle"
        with pytest.raises(httpx.HTTPStatusError) as raised:  # nothing waits any more
            await lg.runs.wait(tid, "agent", command={"resume": True})
        assert raised.value.response.status_code == 409
    memories = (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]
    assert "likes tea" in [m["text"] for m in memories]


async def test_a_run_from_an_earlier_checkpoint_forks_there(base, client, user):
    async with sdk(base, user) as lg:
        tid = (await lg.threads.create())["thread_id"]
        for text in ("one", "two", "three"):
            await lg.runs.wait(tid, "agent", input=said(text))
        history = await lg.threads.get_history(tid)
        assert [len(h["values"]["messages"]) for h in history] == [6, 4, 2, 0]
        after_one = history[2]
        assert after_one["checkpoint"] == history[1]["parent_checkpoint"]
        final = await lg.runs.wait(tid, "agent", input=said("instead"), checkpoint=after_one["checkpoint"])
        assert contents(final) == [
            ("human", "one"),
            ("ai", "Echo: one"),
            ("human", "instead"),
            ("ai", "Echo: instead"),
        ]
        # Regenerate: no input, from the state before the last turn: its message again.
        parent = (await lg.threads.get_state(tid))["parent_checkpoint"]
        final = await lg.runs.wait(tid, "agent", input=None, checkpoint_id=parent["checkpoint_id"])
        assert (
            contents(final)[-2:] == [("human", "instead"), ("ai", "Echo: instead")]
            and len(final["messages"]) == 4
        )
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await lg.runs.wait(
                tid, "agent", input=said("x"), checkpoint_id="1f000000-0000-6000-8000-000000000000"
            )
        assert raised.value.response.status_code == 404
    r = await client.get(f"/api/v1/sessions/{tid}/messages", headers=auth(user))
    assert [m["content"] for m in r.json()["items"]] == ["one", "Echo: one", "instead", "Echo: instead"]


async def test_another_users_thread_runs_state_and_history_are_404(base, client, user):
    async with sdk(base, user) as lg:
        tid = (await lg.threads.create(metadata={"secret": "mine"}))["thread_id"]
        run = await lg.runs.create(tid, "agent", input=said("private"))
        await lg.runs.join(tid, run["run_id"])
        checkpoint = (await lg.threads.get_state(tid))["checkpoint"]["checkpoint_id"]
    other = await register(client)
    async with sdk(base, other) as lg:
        rid = run["run_id"]
        for call in (
            lg.threads.get(tid),
            lg.threads.get_state(tid),
            lg.threads.get_state(tid, checkpoint_id=checkpoint),
            lg.threads.get_history(tid),
            lg.threads.delete(tid),
            lg.runs.get(tid, rid),
            lg.runs.list(tid),
            lg.runs.join(tid, rid),
            lg.runs.cancel(tid, rid),
            lg.runs.create(tid, "agent", input=said("mine now")),
            lg.runs.wait(tid, "agent", input=said("mine now")),
        ):
            with pytest.raises(
                httpx.HTTPStatusError
            ) as raised:  # NotFoundError, or httpx's own for wait/join
                await call
            assert raised.value.response.status_code == 404
        with pytest.raises(NotFoundError):
            async for _ in lg.runs.join_stream(tid, rid):
                pass
        with pytest.raises(NotFoundError):
            async for _ in lg.runs.stream(tid, "agent", input=said("mine now")):
                pass
        assert await lg.threads.search(metadata={"secret": "mine"}) == []
    async with sdk(base, user) as lg:
        assert (await lg.runs.list(tid))[0]["run_id"] == rid and len(await lg.runs.list(tid)) == 1


async def test_bad_bodies_are_422_and_unknown_fields_are_ignored(base, user):
    async with httpx.AsyncClient(base_url=base, headers=auth(user)) as http:
        tid = (await http.post("/threads", json={"metadata": {}, "ttl": None, "brand_new_field": 1})).json()[
            "thread_id"
        ]
        url = f"/threads/{tid}/runs/wait"
        for body in (
            {"assistant_id": "agent"},  # no input
            {"assistant_id": "agent", "input": {"messages": [{"role": "assistant", "content": "x"}]}},
            {"assistant_id": "agent", "input": said("x"), "command": {"resume": True}},
            {"assistant_id": "agent", "command": {"goto": "tools"}},
            {"assistant_id": "agent", "input": said("x"), "interrupt_before": ["tools"]},
        ):
            r = await http.post(url, json=body)
            assert r.status_code == 422 and r.json()["error"] == "validation_error", (body, r.text)
        r = await http.post(
            url,
            json={"assistant_id": "agent", "input": said("ok"), "strict_resume": True, "durability": "exit"},
        )
        assert r.status_code == 200 and r.json()["messages"][-1]["content"] == "Echo: ok"
        r = await http.post(f"/threads/{tid}/runs/x/cancel")  # no body, no content type
        assert r.status_code == 422
        # A thread the client names is made for the run if asked.
        new = str(uuid.uuid4())
        body = {"assistant_id": "agent", "input": said("hi"), "if_not_exists": "create"}
        r = await http.post(f"/threads/{new}/runs/wait", json=body)
        assert (
            r.status_code == 200
            and (await http.get(f"/threads/{new}")).json()["metadata"]["graph_id"] == "agent"
        )
        # What is not supported is simply not there.
        for method, path in (("POST", "/runs/crons/search"), ("PUT", "/store/items"), ("POST", "/runs/wait")):
            assert (await http.request(method, path, json={})).status_code == 404
        assert (await http.patch(f"/threads/{tid}", json={"metadata": {}})).status_code == 405


def test_every_protocol_route_names_a_limit_first(app):
    checked = 0
    for context in iter_route_contexts(list(app.routes)):  # included routes, with their full paths
        path = context.path_format or ""
        if path.split("/")[1] not in ("threads", "assistants", "info"):
            continue
        checked += 1
        first = context.route.dependant.dependencies[0].call
        assert getattr(first, "__qualname__", "").startswith("rate_limit."), path
    assert checked >= 17


async def test_browsers_may_send_the_key_header_and_read_the_run_headers(pg_url, fake_llm):
    # No memory: this app would take memory jobs of the shared one, and wait for them at its shutdown.
    settings = make_settings(pg_url, fake_llm, cors_origins=["http://chat.example"], memory_enabled=False)
    async with running_app(settings) as other, asgi_client(other) as http:
        origin = {"Origin": "http://chat.example"}
        r = await http.options(
            "/threads/search",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, content-type, last-event-id",
            },
        )
        assert r.status_code == 200, r.text  # a preflight needs no token
        allowed = r.headers["access-control-allow-headers"].lower()
        assert {"x-api-key", "last-event-id", "authorization"} <= {h.strip() for h in allowed.split(",")}
        r = await http.get("/info", headers=origin)
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"content-location", "location"} <= exposed
