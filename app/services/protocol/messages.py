"""Our transcript and run events as LangChain message dicts, the shape LangGraph's clients read."""

import uuid
from functools import cache
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

from app.repositories.protocol import TranscriptRow


def human(text: str, message_id: str) -> dict[str, Any]:
    return HumanMessage(text, id=message_id).model_dump()


def ai(text: str, message_id: str, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    calls = [
        {"name": c.get("name") or "?", "args": _args(c.get("args")), "id": c.get("id"), "type": "tool_call"}
        for c in tool_calls or []
    ]
    return AIMessage(text, id=message_id, tool_calls=calls).model_dump()


def tool(result: str, *, call_id: str, name: str, is_error: bool, message_id: str) -> dict[str, Any]:
    status = "error" if is_error else "success"
    return ToolMessage(result, tool_call_id=call_id, name=name, status=status, id=message_id).model_dump()


@cache
def _chunk_template() -> dict[str, Any]:
    return AIMessageChunk(content="", id="").model_dump()


def chunk(text: str, message_id: str) -> dict[str, Any]:
    """A streamed token as an `AIMessageChunk` (built from a template: this runs per token)."""
    return {**_chunk_template(), "content": text, "id": message_id}


def _args(args: Any) -> dict[str, Any]:
    return args if isinstance(args, dict) else {}


def from_transcript(row: TranscriptRow) -> list[dict[str, Any]]:
    """A transcript row as messages, ids derived from its own. An assistant reply that used tools
    becomes an AI message with its tool calls, a tool message per result, then the reply."""
    if row.role == "user":
        return [human(row.content, str(row.id))]
    calls = row.tool_calls or []
    out: list[dict[str, Any]] = []
    if calls:
        ids = [f"call-{row.id}-{i}" for i in range(len(calls))]
        out.append(ai("", f"{row.id}-calls", [{**c, "id": cid} for c, cid in zip(calls, ids, strict=True)]))
        out += [
            tool(
                str(c.get("result") or ""),
                call_id=cid,
                name=str(c.get("name") or "?"),
                is_error=bool(c.get("is_error")),
                message_id=f"{row.id}-result-{i}",
            )
            for i, (c, cid) in enumerate(zip(calls, ids, strict=True))
        ]
    out.append(ai(row.content, str(row.id)))
    return out


def interrupt(run_id: uuid.UUID, tool_calls: list[dict[str, Any]], expires_at: str | None) -> dict[str, Any]:
    """The protocol's Interrupt for a run waiting for approval; its id is the run's."""
    return {"value": {"tool_calls": tool_calls, "expires_at": expires_at}, "id": run_id.hex}


def approval_task(run_id: uuid.UUID, pending: dict[str, Any]) -> dict[str, Any]:
    """The graph's task that waits (app/agent/approval.py), as a state lists it."""
    return {
        "id": str(uuid.uuid5(run_id, "approval")),
        "name": "approval",
        "path": ["__pregel_pull", "approval"],
        "error": None,
        "interrupts": [pending],
        "checkpoint": None,
        "state": None,
        "result": None,
    }
