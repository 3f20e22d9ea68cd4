"""Streaming over real HTTP on loopback: tokens, tools, typed errors, client disconnects."""

import asyncio
import json

import httpx

from tests.conftest import auth, new_session, serve
from tests.fake_llm import Fault


async def read_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: ") :])))
    return events


async def stream_chat(app, user, sid: str, message: str) -> list[tuple[str, dict]]:
    """One streamed turn over real HTTP; the events in order."""
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "POST", f"/api/v1/sessions/{sid}/chat/stream", json={"message": message}, headers=auth(user)
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return await read_events(r)


async def test_stream_sends_tokens_then_the_complete_reply(app, client, user):
    sid = await new_session(client, user)
    events = await stream_chat(app, user, sid, "one two three")
    tokens = [d["content"] for e, d in events if e == "token"]
    # The first text goes at once; the rest of this instant reply comes merged (STREAM_FLUSH_MS).
    assert tokens[0] == "Echo:" and len(tokens) >= 2
    assert events[-1][0] == "done"
    assert "".join(tokens) == events[-1][1]["reply"] == "Echo: one two three"
    transcript = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()
    assert transcript["total"] == 2


async def test_stream_reports_tool_calls(app, client, user):
    sid = await new_session(client, user)
    events = await stream_chat(app, user, sid, "[calc:10/4]")
    names = [e for e, _ in events]
    assert "tool" in names and names[-1] == "done"
    tool = next(d for e, d in events if e == "tool")
    assert tool["name"] == "calculator" and tool["result"] == "2.5"
    assert events[-1][1]["reply"] == "The tool said: 2.5"


async def test_errors_before_the_stream_have_status_codes(app, client, user, fake_llm):
    sid = await new_session(client, user)
    url = f"/api/v1/sessions/{sid}/chat/stream"
    r = await client.post(
        url.replace(sid, "00000000-0000-0000-0000-000000000000"), json={"message": "x"}, headers=auth(user)
    )
    assert r.status_code == 404
    assert (await client.post(url, json={"message": "   "}, headers=auth(user))).status_code == 422
    assert (
        await client.post(url, json={"message": "x", "role": "system"}, headers=auth(user))
    ).status_code == 422
    assert (await client.post(url, json={"message": "x"})).status_code == 401


async def test_stream_cut_mid_way_is_a_typed_error_event(app, client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.script(Fault(cut_after_chunks=2))
    events = await stream_chat(app, user, sid, "a b c d e f")
    assert events[-1][0] == "error"
    assert events[-1][1]["error"] in {"llm_unavailable", "agent_error"}
    # Nothing half-written: the next turn works and sees no trace of the cut one.
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "again"}, headers=auth(user))
    assert r.status_code == 200
    sent = [m["content"] for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]
    assert sent == ["again"]


async def test_client_disconnect_cancels_the_llm_call_and_frees_the_thread(app, client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.token_delay = 0.2
    words = " ".join(f"w{i}" for i in range(30))
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with http.stream(
            "POST", f"/api/v1/sessions/{sid}/chat/stream", json={"message": words}, headers=auth(user)
        ) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: token"):
                    break  # leave after the first token: the context manager closes the connection
        # The fake notices the app dropped its LLM connection long before 30 tokens x 0.2 s.
        for _ in range(50):
            if fake_llm.closed_early:
                break
            await asyncio.sleep(0.1)
        assert fake_llm.closed_early >= 1
        fake_llm.token_delay = 0
        r = await http.post(f"/api/v1/sessions/{sid}/chat", json={"message": "after"}, headers=auth(user))
        assert r.status_code == 200, r.text
    transcript = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()
    assert [m["content"] for m in transcript["items"] if m["role"] == "user"] == ["after"]


async def test_fallback_after_a_mid_stream_failure_sends_reset(pg_url, fake_llm):
    from tests.conftest import asgi_client, make_settings, register, running_app

    settings = make_settings(
        pg_url, fake_llm, llm_model="primary", llm_fallback_models=["fallback"], llm_max_retries=0
    )
    async with running_app(settings) as app, asgi_client(app) as client:
        user = await register(client)
        sid = await new_session(client, user)
        fake_llm.script(Fault(cut_after_chunks=3))  # the primary streams two words, then the connection drops
        events = await stream_chat(app, user, sid, "a b c d")
    names = [e for e, _ in events]
    assert "reset" in names
    after_reset = names[len(names) - 1 - names[::-1].index("reset") :]
    tokens = [d["content"] for e, d in events[len(names) - len(after_reset) :] if e == "token"]
    assert "".join(tokens) == events[-1][1]["reply"] == "Echo: a b c d"
    assert [q["model"] for q in fake_llm.chat_requests] == ["primary", "fallback"]


async def test_no_reset_on_an_ordinary_tool_turn(app, client, user):
    sid = await new_session(client, user)
    events = await stream_chat(app, user, sid, "[calc:1+1] then")
    assert "reset" not in [e for e, _ in events]
    assert events[-1][0] == "done"
