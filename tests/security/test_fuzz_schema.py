"""Fuzzing the whole OpenAPI schema with schemathesis, signed in: no 5xx, every response as documented."""

import asyncio
import json
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from pydantic import BaseModel
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)

from app.schemas.chat import ChatResponse, ToolCallRead
from app.schemas.runs import InterruptRead
from tests.conftest import PASSWORD
from tests.reporting import report
from tests.security.conftest import Person, admin_person, client_from_own_address, person

# Examples per operation, drawn from valid input, invalid input and (for path ids) real objects. About 40
# operations take under a minute on two cores; the fake LLM answers the chat routes at once.
MAX_EXAMPLES = 80

# Who each operation is fuzzed as. The account routes (/auth/...) act on the caller's own login or account:
# log out, change the password (whose failures also lock the account out), delete the account. Each of them
# gets a throwaway user, so that the fuzzing user keeps a working token and an open account for the rest.
# Admin routes run as an admin whose own id is never offered: the known ids name other users only, and a
# random UUID does not hit it, so the admin cannot disable, demote or delete itself mid-run.
ACCOUNT_ROUTES = "/api/v1/auth/"
ADMIN_ROUTES = "/api/v1/admin/"

# schemathesis' negative_data_rejection is left out: query values are strings on the wire, and pydantic
# reads `created_before=0.0` as a Unix time, which it calls schema-violating data accepted.
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


def to_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis serialises a case for `requests`; the same request for httpx."""
    out: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": dict(kwargs.get("headers") or {}),
        "params": kwargs.get("params"),
    }
    if kwargs.get("cookies"):
        out["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        out["content"] = data
    elif data is not None:
        out["data"] = data
    if kwargs.get("files"):
        out["files"] = kwargs["files"]
    return out


def assert_error_shape(response: httpx.Response) -> None:
    if response.status_code >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), response.text
        body = response.json()
        assert set(body) == {"error", "detail"}, body
        assert isinstance(body["error"], str), body


STREAM_EVENTS: dict[str, type[BaseModel] | None] = {
    "token": None,
    "tool": ToolCallRead,
    "reset": None,
    "done": ChatResponse,
    "interrupt": InterruptRead,
    "error": None,
}


def check_event_stream(response: httpx.Response) -> None:
    """The chat stream (and a run's), event by event, against its description.

    The schema documents the stream as `{"type": "string"}`, which schemathesis applies to every event
    (an object) and so always fails; the events are checked here instead.
    """
    events = [block for block in response.text.split("\n\n") if block.strip()]
    assert events, response.text
    for block in events:
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) - {"id"} == {"event", "data"}, block  # a run's events carry their seq as id
        assert fields["event"] in STREAM_EVENTS, block
        data = json.loads(fields["data"])
        model = STREAM_EVENTS[fields["event"]]
        if model is not None:
            model.model_validate(data)
        if fields["event"] == "error":
            assert set(data) == {"error", "detail"}, block
    last = events[-1].split("\n")[-2]  # the event line, after a run's id line
    assert last in ("event: done", "event: error", "event: interrupt"), response.text


PROTOCOL_EVENTS = {"metadata", "values", "messages", "updates", "end", "error"}


def check_protocol_stream(response: httpx.Response) -> None:
    """A stream of the agent protocol (docs/agent-protocol.md): metadata first, one line of JSON per
    event, then end or error."""
    events = []
    for block in (b for b in response.text.split("\n\n") if b.strip()):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) - {"id"} == {"event", "data"} and fields["event"] in PROTOCOL_EVENTS, block
        data = json.loads(fields["data"])
        if fields["event"] == "error":
            assert set(data) == {"error", "message"}, block
        events.append(fields["event"])
    assert events[0] == "metadata" and events[-1] in ("end", "error"), response.text


def curl(case: schemathesis.Case) -> str:
    return case.as_curl_command(headers={"Authorization": "Bearer [token]"})


class Fuzzer:
    """Runs in a worker thread; every request is sent on the test's event loop, where the app lives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
        self.loop, self.client = loop, client
        self.cases = 0
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def send(self, case: schemathesis.Case, token: str) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url="http://test", headers={"Authorization": token})
        response: httpx.Response = self.run(self.client.request(**to_httpx(kwargs)))
        self.cases += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        return response

    def check(self, case: schemathesis.Case, response: httpx.Response) -> None:
        assert response.status_code < 500, response.text
        assert_error_shape(response)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            if response.url.path.startswith("/threads/"):
                check_protocol_stream(response)
            else:
                check_event_stream(response)
            return
        case.validate_response(response, checks=CHECKS)

    def fuzz(self, label: str, strategy: st.SearchStrategy[Any], token: Callable[[], str]) -> None:
        bearer = token()

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same cases every run: CI never flakes on a fresh random draw
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
            report_multiple_bugs=False,
        )
        @hypothesis.given(case=strategy)
        def one(case: schemathesis.Case) -> None:
            # schemathesis' own failures (a BaseExceptionGroup) carry their report and curl line already.
            try:
                self.check(case, self.send(case, bearer))
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n\nReproduce with:\n    {curl(case)}") from None
            except Exception as exc:  # an unhandled app error reaches the ASGI client as itself
                trace = "".join(traceback.format_exception(exc))
                raise AssertionError(f"{trace}\nReproduce with:\n    {curl(case)}") from None

        try:
            one()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            self.failures.append(f"{label}:\n{''.join(traceback.format_exception_only(exc))}")


def strategies(operation: Any, known: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    options = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    names = [p.name for p in operation.path_parameters]
    if names and all(n in known for n in names):
        # Real objects of the fuzzing user (or, for admin routes, of other users) go deeper than random ids.
        fixed = st.fixed_dictionaries({n: st.sampled_from(known[n]) for n in names})
        options.append(
            fixed.flatmap(lambda ids: operation.as_strategy(GenerationMode.POSITIVE, path_parameters=ids))
        )
    return st.one_of(options)


async def fresh_token(client: httpx.AsyncClient, who: Person) -> str:
    r = await client.post("/api/v1/auth/login", data={"username": who.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return f"Bearer {r.json()['access_token']}"


async def seed(client: httpx.AsyncClient, user: Person, others: list[Person]) -> dict[str, list[str]]:
    known: dict[str, list[str]] = {"session_id": [], "memory_id": [], "user_id": [o.id for o in others]}
    for n in range(3):
        r = await client.post("/api/v1/sessions", json={"name": f"fuzz {n}"}, headers=user.headers)
        known["session_id"].append(r.json()["id"])
        r = await client.post("/api/v1/memories", json={"text": f"fuzz fact {n}"}, headers=user.headers)
        known["memory_id"].append(r.json()["id"])
    known["thread_id"] = known["session_id"]  # the agent protocol's name for a session
    return known


@pytest.fixture
def hypothesis_home(tmp_path: Path) -> Iterator[None]:
    # Hypothesis caches under ./.hypothesis by default: keep the checkout clean.
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    set_hypothesis_home_dir(None)


@pytest.mark.slow
@pytest.mark.usefixtures("hypothesis_home")
async def test_fuzz_the_whole_schema_signed_in(app, client):
    user = await person(client)
    admin = await admin_person(app, client)
    others = [await person(client) for _ in range(3)]
    known = await seed(client, user, others)
    schema = schemathesis.openapi.from_dict(app.openapi())
    loop = asyncio.get_running_loop()

    async with client_from_own_address(app) as fuzz_client:
        fuzzer = Fuzzer(loop, fuzz_client)

        def token_for(path: str) -> str:
            # Through the other client: the fuzzer's own failed log-ins may lock its address out.
            if path.startswith(ACCOUNT_ROUTES):
                throwaway: Person = fuzzer.run(person(client))
                return throwaway.headers["Authorization"]
            return str(fuzzer.run(fresh_token(client, admin if path.startswith(ADMIN_ROUTES) else user)))

        def run_all() -> None:
            operations = [result.ok() for result in schema.get_all_operations()]
            # Deletions last, so the known objects are still there for every other operation.
            for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
                label = f"{operation.method.upper()} {operation.path}"
                fuzzer.fuzz(label, strategies(operation, known), lambda path=operation.path: token_for(path))

        started = time.monotonic()
        await asyncio.to_thread(run_all)
        elapsed = time.monotonic() - started

    if app.state.runtime.memory is not None:
        await app.state.runtime.memory_jobs.idle()
    statuses = dict(sorted(fuzzer.statuses.items()))
    report(
        "schema fuzzing: generated cases",
        f"{fuzzer.cases} in {elapsed:.0f} s; statuses {statuses}",
    )
    assert not fuzzer.failures, "\n\n".join(fuzzer.failures)
    assert fuzzer.cases >= MAX_EXAMPLES * 20


async def test_every_422_has_the_documented_shape(app, client, alice):
    documented = app.openapi()["components"]["schemas"]["ValidationError"]["required"]
    sid = (await client.post("/api/v1/sessions", json={}, headers=alice.headers)).json()["id"]
    mid = (await client.post("/api/v1/memories", json={"text": "a fact"}, headers=alice.headers)).json()["id"]
    found = []
    for method, path, kwargs in [
        ("POST", f"/api/v1/sessions/{sid}/chat", {"json": {"message": "   "}}),
        ("POST", f"/api/v1/sessions/{sid}/chat/stream", {"json": {"message": ""}}),
        ("POST", "/api/v1/memories", {"json": {"text": " "}}),
        ("PATCH", f"/api/v1/memories/{mid}", {"json": {"text": "x" * 1001}}),  # MEMORY_MAX_CHARS is 1000
        ("GET", "/api/v1/memories/search", {"params": {"q": "  "}}),
    ]:
        r = await client.request(method, path, headers=alice.headers, **kwargs)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        if not (isinstance(detail, list) and all(set(documented) <= set(d) for d in detail)):
            found.append(f"{method} {path}: {r.text}")
    assert not found, "\n".join(found)
