"""What a turn produces, read off the graph's stream: tokens, tool calls, the reply, token usage."""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from langchain_core.messages import AIMessage, ToolMessage

TOOL_RESULT_PREVIEW = 500


@dataclass
class ToolCallSummary:
    name: str
    args: dict[str, Any]
    result: str | None = None
    is_error: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "args": self.args, "result": self.result, "is_error": self.is_error}


@dataclass
class TurnResult:
    reply: str
    tool_calls: list[ToolCallSummary] = field(default_factory=list)
    message_id: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Token:
    content: str


@dataclass(frozen=True)
class ToolEvent:
    call: ToolCallSummary


@dataclass(frozen=True)
class Restart:
    """The model call that was streaming failed part-way and another (a fallback) took over:
    the tokens sent since the last tool event or the start are void."""


def content_text(content: Any) -> str:
    """Message content as plain text, without NUL (PostgreSQL text cannot store it)."""
    if isinstance(content, str):
        text = content
    else:
        text = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return text.replace("\x00", "")


class TurnCollector:
    """Folds the graph's `updates` into a TurnResult, pairing tool calls with their results."""

    def __init__(self) -> None:
        self.result = TurnResult(reply="")
        self._pending: dict[str, ToolCallSummary] = {}

    def apply(self, chunk: dict[str, Any]) -> list[ToolEvent]:
        events: list[ToolEvent] = []
        for update in chunk.values():
            if not isinstance(update, dict):  # `__interrupt__`: the turn waits (turn.py)
                continue
            for message in update.get("messages", []):
                if isinstance(message, AIMessage):
                    self._on_ai(message)
                elif isinstance(message, ToolMessage):
                    events.append(ToolEvent(self._on_tool(message)))
        return events

    def _on_ai(self, message: AIMessage) -> None:
        if message.usage_metadata:
            self.result.input_tokens += message.usage_metadata["input_tokens"]
            self.result.output_tokens += message.usage_metadata["output_tokens"]
        for call in message.tool_calls:
            summary = ToolCallSummary(name=call["name"], args=call["args"])
            self._pending[call["id"] or summary.name] = summary
            self.result.tool_calls.append(summary)
        if not message.tool_calls:
            self.result.reply = content_text(message.content)

    def _on_tool(self, message: ToolMessage) -> ToolCallSummary:
        summary = self._pending.pop(message.tool_call_id, None)
        if summary is None:
            summary = ToolCallSummary(name=message.name or "?", args={})
        summary.result = content_text(message.content)[:TOOL_RESULT_PREVIEW]
        summary.is_error = message.status == "error"
        return summary


@dataclass(frozen=True)
class Interrupted:
    """The turn stopped before a tool call that needs a person's approval; the run waits, holding no
    lease, until it is resumed, dropped by a new message, or expires."""

    run_id: uuid.UUID
    tool_calls: list[dict[str, Any]]  # id, name, args of each call waiting
    expires_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "tool_calls": self.tool_calls,
            "expires_at": self.expires_at.isoformat(),
        }


TurnEvent = Token | ToolEvent | Restart | Interrupted | TurnResult


class EventSink(Protocol):
    """A run's event log (the runs API): the turn hands its last batch to the statement that pauses it."""

    lock: asyncio.Lock  # held while a batch is written

    def add(self, event: str, data: dict[str, Any]) -> None: ...

    def take_pending(self) -> list[tuple[int, str, dict[str, Any]]]: ...
