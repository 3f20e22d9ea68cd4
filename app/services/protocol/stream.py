"""A run's event log (`run_event`) as the protocol's stream: `metadata` first, then `values`,
`messages` (stream mode messages-tuple) and `updates`, then `end`, or `error` when the run failed.

Each protocol event built from a logged event carries that event's seq as its id (the last of several
built from one), so a client that reconnects with `Last-Event-ID` goes on exactly after it.
"""

import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from app.repositories import protocol as repo
from app.repositories.runs import EventRow
from app.runtime import Runtime
from app.services.chat import run_hub
from app.services.protocol import messages, state

VALUES, MESSAGES, UPDATES = "values", "messages-tuple", "updates"
PRODUCED = frozenset({VALUES, MESSAGES, UPDATES})
ALL = PRODUCED  # a join without stream modes gets all that we produce


@dataclass(frozen=True)
class Out:
    event: str
    data: Any
    id: int | None = None


def stream_modes(raw: Iterable[str] | str | None, *, default: frozenset[str]) -> frozenset[str]:
    """The modes asked for: a string, a list, repeated query values or a JSON array in one; an empty
    value means none given. Modes we cannot produce (custom, events, tools, debug, ...) are dropped."""
    values = [raw] if isinstance(raw, str) else list(raw or [])
    modes: set[str] = set()
    for value in values:
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = []
            if isinstance(parsed, list):
                modes.update(str(v) for v in parsed)
        elif text:
            modes.update(part.strip() for part in text.split(","))
    if not modes:
        return default
    return frozenset(modes & PRODUCED)


class Converter:
    """Folds a run's logged events into protocol events, keeping the state's messages as they grow."""

    def __init__(
        self, *, run_id: uuid.UUID, thread_id: uuid.UUID, modes: frozenset[str], start: list[dict[str, Any]]
    ) -> None:
        self.run_id, self.thread_id, self.modes = run_id, thread_id, modes
        self.messages = list(start)
        self.segment = 0  # a new AI message id after each tool call and each retried model call
        self.partial = ""
        self.calls = 0
        # A resumed run starts at the model's tool calls that waited for approval: their results come first.
        last = self.messages[-1] if self.messages else {}
        self.unanswered: list[dict[str, Any]] = (
            list(last.get("tool_calls") or []) if last.get("type") == "ai" else []
        )

    def _ai_id(self) -> str:
        return f"run-{self.run_id}-{self.segment}"

    def _meta(self, node: str) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "thread_id": str(self.thread_id),
            "langgraph_node": node,
            "langgraph_step": self.segment + 1,
        }

    def _next_message(self) -> None:
        self.segment += 1
        self.partial = ""

    def _tool(self, data: dict[str, Any]) -> list[Out]:
        """A tool's result, after the model's call of it (unless that call is one a resumed run
        waited on, which the state already holds)."""
        name = str(data.get("name") or "?")
        waited = (
            self.unanswered.pop(0) if self.unanswered and self.unanswered[0].get("name") == name else None
        )
        added: list[dict[str, Any]] = []
        if waited is not None:
            call_id = str(waited.get("id"))
        else:
            self.calls += 1
            call_id = f"call-{self.run_id.hex[:12]}-{self.calls}"
            added.append(
                messages.ai(
                    self.partial, self._ai_id(), [{"name": name, "args": data.get("args"), "id": call_id}]
                )
            )
        result = messages.tool(
            str(data.get("result") or ""),
            call_id=call_id,
            name=name,
            is_error=bool(data.get("is_error")),
            message_id=f"{call_id}-result",
        )
        self.messages += [*added, result]
        self._next_message()
        out: list[Out] = []
        if MESSAGES in self.modes:
            out.append(Out("messages", [result, self._meta("tools")]))
        if UPDATES in self.modes:
            if added:
                out.append(Out("updates", {"agent": {"messages": added}}))
            out.append(Out("updates", {"tools": {"messages": [result]}}))
        if VALUES in self.modes:
            out.append(Out("values", {"messages": list(self.messages)}))
        return out

    def convert(self, event: EventRow) -> list[Out]:
        data, modes, out = event.data, self.modes, []
        if event.event == "token":
            self.partial += data.get("content") or ""
            if MESSAGES in modes:
                out.append(
                    Out(
                        "messages",
                        [messages.chunk(data.get("content") or "", self._ai_id()), self._meta("agent")],
                    )
                )
        elif event.event == "reset":
            self._next_message()
        elif event.event == "tool":
            out = self._tool(data)
        elif event.event == "interrupt":
            calls = data.get("tool_calls") or []
            waiting = messages.ai(self.partial, self._ai_id(), calls)
            pending = messages.interrupt(self.run_id, calls, data.get("expires_at"))
            self.messages.append(waiting)
            if UPDATES in modes:
                out += [
                    Out("updates", {"agent": {"messages": [waiting]}}),
                    Out("updates", {"__interrupt__": [pending]}),
                ]
            if VALUES in modes:
                out.append(Out("values", {"messages": list(self.messages), "__interrupt__": [pending]}))
        elif event.event == "done":
            reply_id = data.get("message_id")
            reply = messages.ai(data.get("reply") or "", str(reply_id) if reply_id else self._ai_id())
            if UPDATES in modes:
                out.append(Out("updates", {"agent": {"messages": [reply]}}))
        elif event.event == "error":
            out.append(
                Out("error", {"error": data.get("error") or "error", "message": data.get("detail") or ""})
            )
        return out


async def events(
    rt: Runtime,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    run_id: uuid.UUID,
    after: int,
    modes: frozenset[str],
    start: list[dict[str, Any]],
    announce: bool,
) -> AsyncIterator[Out]:
    """The run's protocol events after seq `after`, until it finished or waits for approval (then
    `end`, or `error` when it failed), or RUN_STREAM_MAX_SECONDS passed (then the stream just ends:
    reconnect with the last id). `start`: the messages the run's state starts from, its own message
    included; `announce`: send them first as `values`."""
    yield Out("metadata", {"run_id": str(run_id), "thread_id": str(session_id), "attempt": 1})
    if announce and VALUES in modes:
        yield Out("values", {"messages": start})
    convert = Converter(run_id=run_id, thread_id=session_id, modes=modes, start=start)
    last: str | None = None
    async for event in run_hub.follow(rt, run_id=run_id, after=after):
        out = convert.convert(event)
        if event.event == "done" and VALUES in modes:
            reply_id = event.data.get("message_id")
            final = await state.messages_through(
                rt,
                user_id=user_id,
                session_id=session_id,
                message_id=reply_id if isinstance(reply_id, int) else None,
            )
            out.append(Out("values", {"messages": final}))
        for i, item in enumerate(out):
            yield Out(item.event, item.data, event.seq if i == len(out) - 1 else None)
        last = event.event
    if last == "error":
        return
    if last not in ("done", "interrupt"):
        async with rt.db.pool.connection() as conn:
            found = await repo.outcome(conn, run_id=run_id, session_id=session_id, user_id=user_id)
        if found is None or found.status in ("pending", "running"):
            return
    yield Out("end", None)
