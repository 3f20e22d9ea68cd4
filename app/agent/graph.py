"""The agent graph: a model node and a tool node in a loop."""

from collections.abc import Sequence

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from app.agent.approval import make_approval_node, make_router, needs_approval
from app.agent.memory import MemoryStore
from app.agent.nodes import make_agent_node, make_recall_node
from app.agent.state import AgentState, Context
from app.agent.tools import tool_error_message


def build_graph(
    model: Runnable[LanguageModelInput, BaseMessage],
    tools: Sequence[BaseTool],
    *,
    max_messages: int,
    max_chars: int,
    memory: MemoryStore | None = None,
) -> StateGraph[AgentState, Context, AgentState, AgentState]:
    """Return the uncompiled builder; the lifespan compiles it once with the checkpointer."""
    builder = StateGraph(AgentState, context_schema=Context)
    agent = make_agent_node(model, max_messages=max_messages, max_chars=max_chars)
    builder.add_node("agent", agent)  # type: ignore[call-overload]  # a (state, config) node; stubs miss the alias
    # Tool failures come back to the model as error messages instead of failing the turn.
    builder.add_node("tools", ToolNode(tools, handle_tool_errors=tool_error_message))
    if memory is None:
        builder.add_edge(START, "agent")
    else:
        # Its own node, so the recalled memories are checkpointed and traced like every other step.
        builder.add_node("recall", make_recall_node(memory))  # type: ignore[call-overload]  # stubs miss the alias
        builder.add_edge(START, "recall")
        builder.add_edge("recall", "agent")
    gated = {t.name for t in tools if needs_approval(t)}
    if gated:
        # Tool calls that need a person's approval stop the run first (app/agent/approval.py).
        builder.add_node("approval", make_approval_node(gated))  # type: ignore[call-overload]  # stubs miss the alias
        builder.add_conditional_edges(
            "agent", make_router(gated), {"tools": "tools", "approval": "approval", END: END}
        )
    else:
        builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "agent")
    return builder
