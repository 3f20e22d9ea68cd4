"""The agent graph: a model node and a tool node in a loop."""

from collections.abc import Sequence

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from app.agent.nodes import make_agent_node
from app.agent.state import AgentState, Context
from app.agent.tools import tool_error_message


def build_graph(
    model: Runnable[LanguageModelInput, BaseMessage],
    tools: Sequence[BaseTool],
    *,
    max_messages: int,
    max_chars: int,
) -> StateGraph[AgentState, Context, AgentState, AgentState]:
    """Return the uncompiled builder; the lifespan compiles it once with the checkpointer."""
    builder = StateGraph(AgentState, context_schema=Context)
    agent = make_agent_node(model, max_messages=max_messages, max_chars=max_chars)
    builder.add_node("agent", agent)  # type: ignore[call-overload]  # a (state, config) node; stubs miss the alias
    # Tool failures come back to the model as error messages instead of failing the turn.
    builder.add_node("tools", ToolNode(tools, handle_tool_errors=tool_error_message))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "agent")
    return builder
