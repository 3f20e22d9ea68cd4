"""/metrics after real turns: HTTP by route template, model, tool, node and memory timings, pools, streams."""

import asyncio
import json
import uuid

import httpx

from app.observability.callbacks import MAX_OPEN_RUNS, MetricsCallbackHandler
from app.observability.metrics import UNMATCHED_ROUTE
from tests.conftest import auth, new_session, serve
from tests.fake_llm import Fault
from tests.observability.scrape import scrape

CHAT = "/api/v1/sessions/{session_id}/chat"
MODEL = "fake-model"


async def test_a_tool_turn_is_counted_by_route_template_model_tool_and_node(client, user, app):
    sid = await new_session(client, user)
    before = await scrape(client)
    r = await client.post(CHAT.format(session_id=sid), json={"message": "[calc:2+3]"}, headers=auth(user))
    assert r.status_code == 200, r.text
    turn = r.json()
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("http_requests_total", method="POST", route=CHAT, status="200") == 1
    assert delta("http_request_duration_seconds_count", method="POST", route=CHAT, status="200") == 1
    assert sid not in after.text, "a raw path (with its id) leaked into a label"
    assert after.total("http_requests_total", route="/metrics") == 0, "scrapes count themselves"

    assert delta("agent_llm_latency_seconds_count", model=MODEL) == 2  # the tool call, then the answer
    assert delta("agent_llm_tokens_total", model=MODEL, direction="input") == turn["input_tokens"]
    assert delta("agent_llm_tokens_total", model=MODEL, direction="output") == turn["output_tokens"]
    assert delta("agent_tool_calls_total", tool="calculator") == 1
    assert delta("agent_tool_latency_seconds_count", tool="calculator") == 1
    assert delta("agent_tool_errors_total", tool="calculator") == 0
    for node, runs in {"recall": 1, "agent": 2, "tools": 1}.items():
        assert delta("agent_node_latency_seconds_count", node=node) == runs, node
    assert delta("agent_memory_recall_latency_seconds_count") == 1
    await app.state.runtime.memory_jobs.idle()
    assert delta("agent_memory_extraction_latency_seconds_count") >= 0  # declared; counted once it ends
    assert (await scrape(client)).value("agent_memory_extraction_latency_seconds_count") > before.value(
        "agent_memory_extraction_latency_seconds_count"
    )
    # Per-run state is dropped when each run ends: nothing grows with the number of turns.
    assert app.state.runtime.callbacks[0].open_runs == 0
    assert len(app.state.runtime.callbacks) == 1


async def test_pool_gauges_are_read_when_scraped(client, app):
    s = app.state.settings
    after = await scrape(client)
    assert after.value("db_pool_max", pool="sqlalchemy") >= s.db_pool_size + s.db_max_overflow
    assert after.value("db_pool_max", pool="psycopg") >= s.checkpoint_pool_size
    for pool in ("sqlalchemy", "psycopg"):
        assert 0 <= after.value("db_pool_in_use", pool=pool) <= after.value("db_pool_size", pool=pool)


async def test_failures_are_counted_by_model_and_tool(client, user, fake_llm):
    sid = await new_session(client, user)
    before = await scrape(client)
    bad_args = '[tool:calculator:{"wrong": 1}]'
    r = await client.post(CHAT.format(session_id=sid), json={"message": bad_args}, headers=auth(user))
    assert r.status_code == 200, r.text
    fake_llm.script(*[Fault(status=500)] * 3)  # the first try and both retries
    r = await client.post(CHAT.format(session_id=sid), json={"message": "hello"}, headers=auth(user))
    assert r.status_code == 503, r.text
    after = await scrape(client)
    assert after.value("agent_tool_errors_total", tool="calculator") == (
        before.value("agent_tool_errors_total", tool="calculator") + 1
    )
    errors = after.total("agent_llm_errors_total", model=MODEL) - before.total(
        "agent_llm_errors_total", model=MODEL
    )
    assert errors == 1
    route = CHAT.format(session_id="{session_id}")
    assert after.value("http_requests_total", method="POST", route=route, status="503") >= 1


async def test_a_stream_counts_while_open_and_records_time_to_first_token(client, user, app, fake_llm):
    sid = await new_session(client, user)
    before = await scrape(client)
    fake_llm.token_delay = 0.05
    open_during: float | None = None
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "POST", f"{CHAT.format(session_id=sid)}/stream", json={"message": "a b c d"}, headers=auth(user)
        ) as r,
    ):
        async for line in r.aiter_lines():
            if line == "event: token" and open_during is None:
                open_during = (await scrape(client)).value("agent_active_streams")
    after = await scrape(client)
    assert open_during == before.value("agent_active_streams") + 1
    assert after.value("agent_active_streams") == before.value("agent_active_streams")
    ttft = "agent_llm_time_to_first_token_seconds_count"
    assert after.value(ttft, model=MODEL) == before.value(ttft, model=MODEL) + 1
    stream_route = CHAT + "/stream"
    assert after.value("http_requests_total", method="POST", route=stream_route, status="200") == (
        before.value("http_requests_total", method="POST", route=stream_route, status="200") + 1
    )


async def test_labels_stay_bounded_whatever_the_client_sends(client, user):
    sid = await new_session(client, user)
    before = await scrape(client)
    await client.get("/health")
    await client.get("/api/v1/health")
    for i in range(3):
        assert (await client.get(f"/no/such/path/{i}")).status_code == 404
    assert (await client.request("BREW", "/health")).status_code == 405
    big = json.dumps({"message": "x" * 100_000})
    r = await client.post(
        CHAT.format(session_id=sid), content=big, headers={**auth(user), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    after = await scrape(client)
    for route in ("/health", "/api/v1/health"):
        assert after.value("http_requests_total", method="GET", route=route, status="200") == (
            before.value("http_requests_total", method="GET", route=route, status="200") + 1
        )
    assert after.value("http_requests_total", method="GET", route=UNMATCHED_ROUTE, status="404") == (
        before.value("http_requests_total", method="GET", route=UNMATCHED_ROUTE, status="404") + 3
    )
    assert after.value("http_requests_total", method="OTHER", route="/health", status="405") >= 1
    assert after.value("http_requests_total", method="POST", route=CHAT, status="413") >= 1
    assert "/no/such" not in after.text and "BREW" not in after.text


async def test_request_ids_are_echoed_only_when_sane(client):
    r = await client.get("/health", headers={"X-Request-ID": "abc-123.x"})
    assert r.headers["x-request-id"] == "abc-123.x"
    for bad in ("a" * 200, "has space", "<script>"):
        r = await client.get("/health", headers={"X-Request-ID": bad})
        assert r.headers["x-request-id"] != bad
        assert len(r.headers["x-request-id"]) == 32
    ids = {(await client.get("/health")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


async def test_concurrent_turns_leave_no_run_state_behind(client, app, user):
    sessions = [await new_session(client, user) for _ in range(3)]
    replies = await asyncio.gather(
        *(
            client.post(CHAT.format(session_id=sid), json={"message": "[calc:1+1]"}, headers=auth(user))
            for sid in sessions
        )
    )
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert app.state.runtime.callbacks[0].open_runs == 0


async def test_a_client_that_leaves_mid_stream_is_no_error_and_leaves_nothing_open(
    client, user, app, fake_llm
):
    sid = await new_session(client, user)
    before = await scrape(client)
    fake_llm.token_delay = 0.2
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with http.stream(
            "POST",
            f"{CHAT.format(session_id=sid)}/stream",
            json={"message": "a b c d e f"},
            headers=auth(user),
        ) as r:
            async for line in r.aiter_lines():
                if line == "event: token":
                    break  # leave: the connection closes with the stream
        for _ in range(100):
            after = await scrape(client)
            if after.value("agent_active_streams") == before.value("agent_active_streams"):
                break
            await asyncio.sleep(0.05)
    assert after.value("agent_active_streams") == before.value("agent_active_streams")
    assert after.total("agent_llm_errors_total") == before.total("agent_llm_errors_total")
    for _ in range(40):
        if app.state.runtime.callbacks[0].open_runs == 0:
            break
        await asyncio.sleep(0.05)
    assert app.state.runtime.callbacks[0].open_runs == 0


def test_runs_whose_end_never_comes_are_forgotten_past_a_bound():
    handler = MetricsCallbackHandler()
    for _ in range(MAX_OPEN_RUNS + 5):
        handler.on_tool_start({"name": "calculator"}, "", run_id=uuid.uuid4())
    assert handler.open_runs <= MAX_OPEN_RUNS
    # A chain run that is not a graph node (its name differs from the node it runs in) is not timed.
    handler = MetricsCallbackHandler()
    handler.on_chain_start(None, {}, run_id=uuid.uuid4(), metadata={"langgraph_node": "agent"}, name="Seq")
    assert handler.open_runs == 0
