"""Graph nodes."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.runtime import Runtime

from app.agent import history, prompts
from app.agent.memory import MemoryStore
from app.agent.state import AgentState, Context

AgentNode = Callable[[AgentState, RunnableConfig], Awaitable[dict[str, Any]]]
RecallNode = Callable[[AgentState, Runtime[Context]], Awaitable[dict[str, Any]]]


def make_recall_node(store: MemoryStore) -> RecallNode:
    async def recall(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
        """The user's memories nearest to their new message; the user comes from the run context."""
        if not runtime.context.memory_enabled:
            return {"memories": []}
        latest = next((m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)), None)
        query = latest.text if latest else ""
        if not query.strip():
            return {"memories": []}
        return {"memories": await store.recall(runtime.context.user_id, query)}

    return recall


def system_prompt(memories: list[str]) -> str:
    text = prompts.load("system").format(now=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"))
    if memories:
        text += prompts.load("memories").format(memories="\n".join(f"- {m}" for m in memories))
    return text


def make_agent_node(
    model: Runnable[LanguageModelInput, BaseMessage], *, max_messages: int, max_chars: int
) -> AgentNode:
    async def agent(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        messages = state["messages"]
        start = history.window_start(messages, max_messages=max_messages, max_chars=max_chars)
        system = SystemMessage(system_prompt(state.get("memories") or []))
        response = await model.ainvoke([system, *messages[start:]], config)
        if isinstance(response, AIMessage) and response.tool_calls:
            return {"messages": [response]}
        # The turn is complete: drop what fell out of the window so the checkpoint stays bounded.
        drop = history.removals([*messages, response], max_messages=max_messages, max_chars=max_chars)
        return {"messages": [*drop, response]}

    return agent
