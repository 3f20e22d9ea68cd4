"""Tool calls that need a person's approval: the graph stops before them with LangGraph's `interrupt()`
and goes on with the person's answer, given as `Command(resume={"decision", "args", "reason"})`."""

from collections.abc import Awaitable, Callable, Collection
from typing import Any, Literal

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END
from langgraph.types import Command, interrupt

from app.agent.state import AgentState

NEEDS_APPROVAL = "needs_approval"  # set in a tool's metadata

ApprovalNode = Callable[[AgentState], Awaitable[Command[Literal["tools", "agent"]]]]


def needs_approval(tool: BaseTool) -> bool:
    return bool((tool.metadata or {}).get(NEEDS_APPROVAL))


def make_router(gated: Collection[str]) -> Callable[[AgentState], str]:
    """After the model: its tool calls run, or wait for approval first if any of them needs it."""

    def route(state: AgentState) -> str:
        last = state["messages"][-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return END
        return "approval" if any(c["name"] in gated for c in last.tool_calls) else "tools"

    return route


def make_approval_node(gated: Collection[str]) -> ApprovalNode:
    async def approval(state: AgentState) -> Command[Literal["tools", "agent"]]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)  # the router sends only a model's tool calls here
        waiting = [c for c in last.tool_calls if c["name"] in gated]
        answer: dict[str, Any] = interrupt(
            {"tool_calls": [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in waiting]}
        )
        decision = answer.get("decision")
        if decision == "approve":
            return Command(goto="tools")
        if decision == "edit":
            edited_id = waiting[0]["id"]
            calls = [{**c, "args": answer["args"]} if c["id"] == edited_id else c for c in last.tool_calls]
            # The same message id: the state's message is replaced, not appended to.
            return Command(goto="tools", update={"messages": [last.model_copy(update={"tool_calls": calls})]})
        return Command(goto="agent", update={"messages": _rejections(last, waiting, answer.get("reason"))})

    return approval


def _rejections(last: AIMessage, waiting: list[Any], reason: str | None) -> list[ToolMessage]:
    """Every call of the message gets a result, as the model's API requires: the refused ones say
    why, the others that they were not run either."""
    refused = {c["id"] for c in waiting}
    because = f" The reason given: {reason}" if reason else ""
    names = ", ".join(sorted({c["name"] for c in waiting}))
    return [
        ToolMessage(
            f"The user did not approve this call, so it was not run.{because}"
            if c["id"] in refused
            else f"Not run: the user did not approve {names}, asked for in the same step.",
            tool_call_id=c["id"],
            name=c["name"],
            status="error",
        )
        for c in last.tool_calls
    ]
