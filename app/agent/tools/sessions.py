"""Tool: the calling user's own chat sessions; identity comes from the run context."""

from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime

from app.agent.state import Context
from app.repositories import sessions as sessions_repo

MAX_LISTED = 20


@tool
async def list_my_sessions(runtime: ToolRuntime[Context]) -> str:
    """List the current user's chat sessions (names and creation dates), newest first."""
    ctx = runtime.context
    async with ctx.db() as db:
        chats, total = await sessions_repo.list_for_user(db, ctx.user_id, limit=MAX_LISTED, offset=0)
    if not chats:
        return "The user has no chat sessions."
    lines = [
        f"- {c.name} (created {c.created_at:%Y-%m-%d}){' [this session]' if c.id == ctx.session_id else ''}"
        for c in chats
    ]
    more = f"\n(and {total - len(chats)} older)" if total > len(chats) else ""
    return f"{total} session(s):\n" + "\n".join(lines) + more
