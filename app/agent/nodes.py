"""Graph nodes."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig

from app.agent import history, prompts
from app.agent.state import AgentState

AgentNode = Callable[[AgentState, RunnableConfig], Awaitable[dict[str, Any]]]


def make_agent_node(
    model: Runnable[LanguageModelInput, BaseMessage], *, max_messages: int, max_chars: int
) -> AgentNode:
    template = prompts.load("system")

    async def agent(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        messages = state["messages"]
        start = history.window_start(messages, max_messages=max_messages, max_chars=max_chars)
        system = SystemMessage(template.format(now=datetime.now(UTC).strftime("%Y-%m-%d %H:%M")))
        response = await model.ainvoke([system, *messages[start:]], config)
        if isinstance(response, AIMessage) and response.tool_calls:
            return {"messages": [response]}
        # The turn is complete: drop what fell out of the window so the checkpoint stays bounded.
        drop = history.removals([*messages, response], max_messages=max_messages, max_chars=max_chars)
        return {"messages": [*drop, response]}

    return agent
