"""ChatOpenAI for a model that writes its tool calls as JSON text (LLM_TOOL_CALLS_IN_TEXT).

Qwen2.5-Coder, the bundled local model, answers a tool request with `{"name": ..., "arguments": ...}`,
bare, in a ```json fence or in tags, and llama.cpp's server passes that on as the reply's text. Here such a
reply becomes a tool call, but only when the whole reply is calls to offered tools with arguments
their schema accepts; anything else stays the answer. Real providers never go through this class.

After tool results the model is asked to answer from them, with no tools offered: offered tools, the
small model calls the same tool again and again, or refuses, instead of reading the result (measured).
"""

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from functools import reduce
from operator import add
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall, ToolMessage
from langchain_core.messages.tool import tool_call, tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

# A call spelled out in a fence (```json, ```tool_call or bare ```), in the <tool_call> tags of Qwen's
# chat template, or in the <tools> tags that template wraps the tool list in (fences, bare JSON and
# <tools> were all seen from the model).
_BLOCK = re.compile(
    r"```(?:json|tool_call)?[ \t]*\n?(?P<fenced>.*?)```"
    r"|<(?P<tag>tool_call|tools)>(?P<tagged>.*?)(?:</(?P=tag)>|\Z)",
    re.S,
)
_TAGS = ("<tool_call>", "<tools>")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _matches(schema: Mapping[str, Any], value: Any) -> bool:
    """The part of JSON Schema that tool argument schemas use: types, enums, anyOf, nested objects."""
    if variants := schema.get("anyOf") or schema.get("oneOf"):
        return any(_matches(v, value) for v in variants)
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        bool_ok = "boolean" in kinds
        if isinstance(value, bool) and not bool_ok:
            return False  # True is an int to Python, never to JSON Schema
        if not any(isinstance(value, _TYPES.get(k, ())) for k in kinds):
            return False
    if isinstance(value, dict) and "properties" in schema:
        return _object_matches(schema, value, closed=schema.get("additionalProperties") is False)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return all(_matches(schema["items"], v) for v in value)
    return True


def _object_matches(schema: Mapping[str, Any], value: Mapping[str, Any], *, closed: bool) -> bool:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    if closed and not set(value) <= set(properties):
        return False
    if not set(schema.get("required") or ()) <= set(value):
        return False
    return all(_matches(properties[k], v) for k, v in value.items() if k in properties)


def _offered(tools: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Tool name -> its argument schema, from the OpenAI-format tools sent with the request."""
    offered: dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        function = tool.get("function") if tool.get("type") == "function" else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            offered[function["name"]] = function.get("parameters") or {"type": "object", "properties": {}}
    return offered


def _blocks(text: str) -> list[str] | None:
    """The JSON texts of the calls, when the reply is nothing but calls."""
    text = text.strip()
    if text.startswith("{"):
        return [text]
    found, position = [], 0
    for match in _BLOCK.finditer(text):
        if text[position : match.start()].strip():
            return None
        found.append(match["fenced"] if match["fenced"] is not None else match["tagged"])
        position = match.end()
    return found if found and not text[position:].strip() else None


def _load(block: str) -> Any:
    block = block.strip()
    try:
        return json.loads(block)
    except json.JSONDecodeError:
        # Qwen's chat template shows the format as {{"name": ...}} (escaped braces), and the model copies it.
        if block.startswith("{{") and block.endswith("}}"):
            try:
                return json.loads(block[1:-1])
            except json.JSONDecodeError:
                return None
        return None


def _call(data: Any, offered: Mapping[str, Mapping[str, Any]]) -> ToolCall | None:
    if not isinstance(data, dict) or not set(data) <= {"name", "arguments"} or "name" not in data:
        return None
    name, args = data["name"], data.get("arguments", {})
    if isinstance(args, str):  # the OpenAI wire format: arguments as a JSON string
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    schema = offered.get(name) if isinstance(name, str) else None
    # A tool's parameters are closed here: an argument it does not name means the call is not for it.
    if schema is None or not isinstance(args, dict) or not _object_matches(schema, args, closed=True):
        return None
    return tool_call(name=name, args=args, id=f"call_{uuid.uuid4().hex[:24]}")


def parse_tool_calls(text: str, tools: Sequence[Mapping[str, Any]]) -> list[ToolCall] | None:
    """The tool calls a reply consists of, or None when the reply is an answer.

    Every call must name an offered tool with arguments valid for it, and the reply must hold
    nothing else: a call among prose, or a JSON answer that merely looks like one, stays text.
    """
    offered = _offered(tools)
    blocks = _blocks(text) if offered else None
    if not blocks:
        return None
    calls = [_call(_load(block), offered) for block in blocks]
    return [c for c in calls if c is not None] if all(calls) else None


def may_be_tool_call(text: str) -> bool | None:
    """From a reply's start: True if it may turn out to be a tool call, False if it cannot, None if too early.

    Whatever `parse_tool_calls` accepts starts with `{`, a <tool_call> or <tools> tag or a ```json,
    ```tool_call or bare ``` fence, so a reply that starts otherwise can be streamed as it comes.
    """
    s = text.lstrip()
    if not s:
        return None
    if s.startswith(("{", *_TAGS)):
        return True
    if s.startswith("```"):
        first_line, newline, _ = s[3:].partition("\n")
        if not newline and "{" not in first_line and len(first_line) < 12:
            return None  # the fence's language is still coming
        return first_line.partition("{")[0].strip() in ("", "json", "tool_call")
    return None if any(opener.startswith(s) for opener in (*_TAGS, "```")) else False


def _as_tool_calls(message: BaseMessage, calls: list[ToolCall]) -> AIMessage:
    metadata = {**message.response_metadata, "finish_reason": "tool_calls"}
    usage = message.usage_metadata if isinstance(message, AIMessage) else None
    return AIMessage(
        content="", tool_calls=calls, id=message.id, response_metadata=metadata, usage_metadata=usage
    )


class _Gate:
    """Streams a reply as it comes, unless its start says it may be a tool call: then holds it to the end.

    So the tokens of a tool call are never shown as an answer, and nothing shown is taken back.
    """

    def __init__(self, tools: Sequence[Mapping[str, Any]]) -> None:
        self.tools = tools
        self.text = ""
        self.held: list[ChatGenerationChunk] = []
        self.passing = False

    def push(self, chunk: ChatGenerationChunk) -> list[ChatGenerationChunk]:
        if self.passing:
            return [chunk]
        self.held.append(chunk)
        message = chunk.message
        self.text += message.content if isinstance(message.content, str) else chunk.text
        server_parsed = isinstance(message, AIMessageChunk) and message.tool_call_chunks
        if server_parsed or may_be_tool_call(self.text) is False:
            self.passing = True
            held, self.held = self.held, []
            return held
        return []

    def finish(self) -> list[ChatGenerationChunk]:
        held, self.held = self.held, []
        if not held:
            return []
        calls = parse_tool_calls(self.text, self.tools)
        if calls is None:
            return held
        whole = reduce(add, held)
        message = _as_tool_calls(whole.message, calls)
        chunks = [
            tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
            for i, c in enumerate(calls)
        ]
        return [
            ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    id=message.id,
                    tool_call_chunks=chunks,
                    response_metadata=message.response_metadata,
                    usage_metadata=message.usage_metadata,
                ),
                generation_info={**(whole.generation_info or {}), "finish_reason": "tool_calls"},
            )
        ]


def _request(messages: Sequence[BaseMessage], kwargs: dict[str, Any]) -> dict[str, Any]:
    """One round of tools per turn: once the conversation ends in tool results, the model answers."""
    if messages and isinstance(messages[-1], ToolMessage):
        return {k: v for k, v in kwargs.items() if k not in ("tools", "tool_choice", "parallel_tool_calls")}
    return kwargs


class TextToolCallsChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose replies that spell out tool calls become tool calls, streamed or not."""

    def _with_calls(self, result: ChatResult, tools: Sequence[Mapping[str, Any]] | None) -> ChatResult:
        if not tools:
            return result
        for generation in result.generations:
            message = generation.message
            if isinstance(message, AIMessage) and not message.tool_calls and isinstance(message.content, str):
                calls = parse_tool_calls(message.content, tools)
                if calls is not None:
                    generation.message = _as_tool_calls(message, calls)
        return result

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs = _request(messages, kwargs)
        return self._with_calls(super()._generate(messages, stop, run_manager, **kwargs), kwargs.get("tools"))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs = _request(messages, kwargs)
        result = await super()._agenerate(messages, stop, run_manager, **kwargs)
        return self._with_calls(result, kwargs.get("tools"))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        kwargs = _request(messages, kwargs)
        tools = kwargs.get("tools")
        if not tools:
            yield from super()._stream(messages, stop, run_manager, **kwargs)
            return
        gate = _Gate(tools)
        # The parent reports each raw chunk to run_manager: this class reports what it lets through.
        for raw in super()._stream(messages, stop, None, **kwargs):
            for chunk in gate.push(raw):
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        for chunk in gate.finish():
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        kwargs = _request(messages, kwargs)
        tools = kwargs.get("tools")
        if not tools:
            async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                yield chunk
            return
        gate = _Gate(tools)
        async for raw in super()._astream(messages, stop, None, **kwargs):
            for chunk in gate.push(raw):
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        for chunk in gate.finish():
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
