"""Tool calls written as text (LLM_TOOL_CALLS_IN_TEXT): the parse step, and the adapter streamed or not."""

import json
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI

from app.agent.llm import build_model
from app.agent.local_model import TextToolCallsChatOpenAI, may_be_tool_call, parse_tool_calls
from app.agent.openai_client import build_client
from app.agent.tools import default_tools
from tests.api.test_stream import read_events
from tests.conftest import auth, make_settings, new_session, register, running_app, serve

TOOLS = [convert_to_openai_tool(t) for t in default_tools()]
CALC = '{"name": "calculator", "arguments": {"expression": "17*23"}}'

# What Qwen2.5-Coder was measured to write, and the variants its chat template invites.
CALLS = {
    "bare": CALC,
    "fenced": f"```json\n{CALC}\n```",
    "fenced without a language": f"```\n{CALC}\n```",
    "pretty, after a blank line": (
        '\n```json\n{\n  "name": "calculator",\n  "arguments": {\n    "expression": "17*23"\n  }\n}\n```'
    ),
    "tagged": f"<tool_call>\n{CALC}\n</tool_call>",
    "tagged, unclosed": f"<tool_call>\n{CALC}",
    "in <tools> tags": f"<tools>\n{CALC}\n</tools>",
    "double braces": '{{"name": "calculator", "arguments": {"expression": "17*23"}}}',
    "arguments as a JSON string": '{"name": "calculator", "arguments": "{\\"expression\\": \\"17*23\\"}"}',
}

ANSWERS = {
    "prose": "17 times 23 is 391.",
    "unknown tool": '{"name": "shell", "arguments": {"cmd": "rm -rf /"}}',
    "an argument the tool does not have": (
        '{"name": "calculator", "arguments": {"expression": "(17.5 * 3) / 4", "required": ["expression"]}}'
    ),
    "a required argument missing": '{"name": "calculator", "arguments": {}}',
    "an argument of the wrong type": '{"name": "calculator", "arguments": {"expression": 391}}',
    "a boolean for a string": '{"name": "current_datetime", "arguments": {"timezone": true}}',
    "keys besides name and arguments": '{"name": "calculator", "arguments": {"expression": "1"}, "why": "x"}',
    "a call among prose": f"Let me work it out:\n```json\n{CALC}\n```",
    "prose after a call": f"```json\n{CALC}\n```\nThat gives 391.",
    "mismatched tags": f"<tools>\n{CALC}\n</tool_call>",
    "JSON data that is not a call": '{"name": "Biscuit", "kind": "dog"}',
    "not JSON": "```json\n{name: calculator}\n```",
    "a code answer": "```python\nprint(17 * 23)\n```",
    "empty": "",
}


@pytest.mark.parametrize("text", CALLS.values(), ids=CALLS.keys())
def test_a_whole_reply_of_valid_calls_is_a_tool_call(text):
    calls = parse_tool_calls(text, TOOLS)
    assert calls is not None and len(calls) == 1
    assert (calls[0]["name"], calls[0]["args"]) == ("calculator", {"expression": "17*23"})
    assert calls[0]["id"]


@pytest.mark.parametrize("text", ANSWERS.values(), ids=ANSWERS.keys())
def test_anything_else_stays_the_answer(text):
    assert parse_tool_calls(text, TOOLS) is None


def test_no_tools_offered_means_no_tool_calls():
    assert parse_tool_calls(CALC, []) is None


def test_several_calls_and_tools_without_arguments():
    text = (
        '<tool_call>\n{"name": "list_my_sessions", "arguments": {}}\n</tool_call>\n'
        '<tool_call>\n{"name": "current_datetime"}\n</tool_call>'
    )
    calls = parse_tool_calls(text, TOOLS)
    assert calls is not None
    assert [(c["name"], c["args"]) for c in calls] == [("list_my_sessions", {}), ("current_datetime", {})]
    assert calls[0]["id"] != calls[1]["id"]
    # One invalid call among them: none is taken.
    assert parse_tool_calls(text + '\n<tool_call>{"name": "nope"}</tool_call>', TOOLS) is None


@pytest.mark.parametrize("text", CALLS.values(), ids=CALLS.keys())
def test_no_prefix_of_a_call_is_ever_streamed(text):
    # The stream decides from a reply's start: no start of a call may be judged "not a call".
    assert all(may_be_tool_call(text[:n]) is not False for n in range(len(text) + 1))
    assert may_be_tool_call(text) is True


@pytest.mark.parametrize(
    ("start", "verdict"),
    [
        ("", None),
        ("  ", None),
        ("Hi", False),
        ("17", False),
        ("`", None),
        ("``", None),
        ("```", None),
        ("```py", None),
        ("```python\n", False),
        ("```json\n", True),
        ("```\n", True),
        ("<tool", None),
        ("<tools", None),
        ("<tools>", True),
        ("<toolbox>", False),
        ("<b>", False),
        ("{", True),
    ],
)
def test_the_stream_decides_from_the_start(start, verdict):
    assert may_be_tool_call(start) is verdict


# --- the adapter against the fake OpenAI-compatible server


def local_model(fake_llm, cls: type[ChatOpenAI] = TextToolCallsChatOpenAI) -> Any:
    return cls(model="fake-model", base_url=fake_llm.base_url, api_key="x", stream_usage=True).bind_tools(
        default_tools()
    )


async def test_a_call_written_as_text_becomes_a_tool_call(fake_llm):
    fake_llm.script_reply(f"```json\n{CALC}\n```", when="what is 17*23")
    reply = await local_model(fake_llm).ainvoke([HumanMessage("what is 17*23?")])
    assert isinstance(reply, AIMessage)
    assert reply.content == ""
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("calculator", {"expression": "17*23"})]
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 0
    # Plain ChatOpenAI, which every real provider gets, leaves the text alone.
    plain = await local_model(fake_llm, ChatOpenAI).ainvoke([HumanMessage("what is 17*23?")])
    assert plain.tool_calls == [] and "calculator" in plain.content


async def test_a_streamed_call_shows_no_tokens(fake_llm):
    fake_llm.script_reply(f"```json\n{CALC}\n```", when="what is 17*23")
    chunks = [c async for c in local_model(fake_llm).astream([HumanMessage("what is 17*23?")])]
    assert all(c.content == "" for c in chunks)
    whole = sum(chunks[1:], chunks[0])
    assert isinstance(whole, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [("calculator", {"expression": "17*23"})]
    assert whole.usage_metadata and whole.usage_metadata["output_tokens"] > 0


async def test_an_answer_streams_token_by_token(fake_llm):
    chunks = [c async for c in local_model(fake_llm).astream([HumanMessage("one two three four")])]
    texts = [c.content for c in chunks if c.content]
    assert len(texts) >= 4
    assert "".join(texts) == "Echo: one two three four"
    assert not sum(chunks[1:], chunks[0]).tool_calls


async def test_an_answer_that_looks_like_a_call_arrives_whole(fake_llm):
    data = '{"name": "Biscuit", "kind": "dog"}'
    fake_llm.script_reply(data, when="my dog as JSON")
    chunks = [c async for c in local_model(fake_llm).astream([HumanMessage("my dog as JSON")])]
    whole = sum(chunks[1:], chunks[0])
    assert whole.content == data
    assert not whole.tool_calls


def test_only_the_setting_selects_the_adapter(fake_llm):
    def primary(**overrides: Any) -> Any:
        settings = make_settings("postgresql://unused", fake_llm, **overrides)
        return build_model(settings, default_tools(), build_client(settings)).bound  # type: ignore[attr-defined]

    assert type(primary()) is ChatOpenAI
    assert type(primary(llm_tool_calls_in_text=True)) is TextToolCallsChatOpenAI


# --- through the service: what a client of the stream sees


async def test_a_streamed_turn_shows_the_answer_not_the_call(pg_url, fake_llm):
    settings = make_settings(pg_url, fake_llm, llm_tool_calls_in_text=True, memory_enabled=False)
    fake_llm.script_reply(f"```json\n{CALC}\n```", when="What is 17*23?")
    async with running_app(settings) as app, serve(app) as base, httpx.AsyncClient(base_url=base) as http:
        user = await register(http)
        sid = await new_session(http, user)
        async with http.stream(
            "POST",
            f"/api/v1/sessions/{sid}/chat/stream",
            json={"message": "What is 17*23?"},
            headers=auth(user),
        ) as r:
            events = await read_events(r)
    names = [name for name, _ in events]
    # No token before the tool ran, no reset; then the answer's tokens, then done.
    assert names.index("tool") < names.index("token")
    assert "reset" not in names and names[-1] == "done"
    tool = next(data for name, data in events if name == "tool")
    assert (tool["name"], tool["args"], tool["result"]) == ("calculator", {"expression": "17*23"}, "391")
    tokens = "".join(data["content"] for name, data in events if name == "token")
    assert tokens == events[-1][1]["reply"] == "The tool said: 391"
    assert json.dumps(events).count("```") == 0
    # Asked with the result, the model answers: it is offered no tools to call again.
    call, answer = fake_llm.chat_requests[-2:]
    assert call["tools"] and "tools" not in answer
    assert answer["messages"][-1]["role"] == "tool"


async def test_after_tool_results_the_model_answers(fake_llm):
    ask = HumanMessage("what is 17*23?")
    called = AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "17*23"}, "id": "c1"}])
    reply = await local_model(fake_llm).ainvoke([ask, called, ToolMessage("391", tool_call_id="c1")])
    assert reply.content == "The tool said: 391"
    assert "tools" not in fake_llm.chat_requests[-1]
    await local_model(fake_llm).ainvoke([ask])
    assert fake_llm.chat_requests[-1]["tools"]
