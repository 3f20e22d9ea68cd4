"""Tool: search the calling user's long-term memory; the user comes from the run context."""

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime

from app.agent.memory import MemoryStore
from app.agent.state import Context

MAX_FOUND = 5


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

    return [search_memory]
