"""Tools on the calling user's long-term memory; the user comes from the run context."""

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime

from app.agent.approval import NEEDS_APPROVAL
from app.agent.memory import MemoryStore
from app.agent.state import Context

MAX_FOUND = 5
MAX_FACT_CHARS = 500


def memory_tools(store: MemoryStore) -> list[BaseTool]:
    @tool
    async def search_memory(query: str, runtime: ToolRuntime[Context]) -> str:
        """Search what you remember about the current user from earlier conversations."""
        if not runtime.context.memory_enabled:
            return "Memory is switched off for this conversation: nothing can be looked up."
        hits = await store.search(runtime.context.user_id, query[:1000], limit=MAX_FOUND, text_only=True)
        if not hits:
            return "Nothing remembered about that."
        return "\n".join(f"- {h.text}" for h in hits)

    @tool
    async def remember_this(fact: str, runtime: ToolRuntime[Context]) -> str:
        """Save one fact about the current user to long-term memory, as written. The user is asked to
        approve it first. Use it when the user asks you to remember something."""
        if not runtime.context.memory_enabled:
            return "Memory is switched off for this conversation: nothing can be saved."
        fact = fact.strip()[:MAX_FACT_CHARS]
        if not fact:
            return "Error: there is nothing to remember in an empty fact."
        await store.add(runtime.context.user_id, fact)
        return f"Remembered: {fact}"

    # A write the user sees later in every conversation: a person approves it (app/agent/approval.py).
    remember_this.metadata = {NEEDS_APPROVAL: True}
    return [search_memory, remember_this]
