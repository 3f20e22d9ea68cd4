"""Chat session use cases: create, list, rename, delete (with every checkpoint), transcript."""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFoundError, ThreadBusyError, ValidationFailedError
from app.models import ChatSession, Feedback, Thread
from app.repositories import checkpoints as checkpoints_repo
from app.repositories import leases as leases_repo
from app.repositories import messages as messages_repo
from app.repositories import search as search_repo
from app.repositories import sessions as sessions_repo
from app.repositories import threads as threads_repo

DEFAULT_NAME = "New chat"
AUTO_NAME_CHARS = 60
_FIRST_LINE = re.compile(r"\S[^\r\n]*")
T = TypeVar("T")


def name_from_message(text: str, limit: int = AUTO_NAME_CHARS) -> str:
    """A session name from a first message, without a model call: its first non-blank line,
    whitespace collapsed, cut at a word boundary to at most `limit` characters ("…" included)."""
    found = _FIRST_LINE.search(text)
    # Only the start of the line can make it into the name: a huge line is not split whole.
    name = " ".join(found.group()[: 4 * limit].split()) if found else ""
    if len(name) <= limit:
        return name or DEFAULT_NAME
    cut = name[: limit - 1]
    if name[limit - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]  # the last word would be broken: drop it
    return cut.rstrip() + "…"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


async def create_session(
    session: AsyncSession, *, user_id: uuid.UUID, name: str | None, memory_enabled: bool = True
) -> ChatSession:
    chat, _ = await sessions_repo.add(
        session,
        user_id=user_id,
        name=name or DEFAULT_NAME,
        name_is_default=name is None,
        memory_enabled=memory_enabled,
    )
    return chat


async def list_sessions(
    session: AsyncSession, *, user_id: uuid.UUID, limit: int, offset: int
) -> Page[ChatSession]:
    items, total = await sessions_repo.list_for_user(session, user_id, limit=limit, offset=offset)
    return Page(items, total, limit, offset)


async def search(
    session: AsyncSession, *, user_id: uuid.UUID, query: str, limit: int, offset: int
) -> Page[search_repo.Hit]:
    """The caller's session titles and messages matching `query` (web-search syntax: words, "a
    phrase", -excluded, or), newest first."""
    if not query.strip():
        raise ValidationFailedError("q must not be blank", loc=("query", "q"))
    items, total = await search_repo.search(session, user_id=user_id, query=query, limit=limit, offset=offset)
    return Page(items, total, limit, offset)


async def get_owned(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[ChatSession, Thread]:
    found = await sessions_repo.get_owned(session, session_id=session_id, user_id=user_id)
    if found is None:
        # Another user's session looks exactly like a missing one.
        raise NotFoundError("Session not found")
    return found


async def update_session(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    name: str | None,
    memory_enabled: bool | None,
) -> ChatSession:
    """Rename (for good: no automatic name replaces it) and/or switch memory; None leaves a field."""
    chat, _ = await get_owned(session, user_id=user_id, session_id=session_id)
    return await sessions_repo.update(
        session, chat, name=name, memory_enabled=memory_enabled, now=datetime.now(UTC)
    )


async def _lock_idle_thread(session: AsyncSession, thread: Thread, lease_ttl: timedelta) -> None:
    # Taking the run lease inside this transaction keeps a turn from writing into what we delete.
    if not await leases_repo.take_for_change(session, [thread.id], lease_ttl):
        raise ThreadBusyError()


async def delete_session(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, lease_ttl: timedelta
) -> uuid.UUID:
    """The session with its thread, transcript and checkpoints; the thread's id."""
    _, thread = await get_owned(session, user_id=user_id, session_id=session_id)
    await _lock_idle_thread(session, thread, lease_ttl)
    await checkpoints_repo.delete_for_threads(session, [thread.id])
    await sessions_repo.delete_by_id(session, session_id)  # thread and messages go by cascade
    return thread.id


@dataclass(frozen=True)
class TranscriptMessage:
    id: int
    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None
    created_at: datetime
    feedback: Feedback | None  # the reader's own


async def list_messages(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, limit: int, offset: int
) -> Page[TranscriptMessage]:
    _, thread = await get_owned(session, user_id=user_id, session_id=session_id)
    rows, total = await messages_repo.list_for_thread(
        session, thread.id, user_id=user_id, limit=limit, offset=offset
    )
    items = [
        TranscriptMessage(
            id=m.id or 0,
            role=m.role,
            content=m.content,
            tool_calls=m.tool_calls,
            created_at=m.created_at,
            feedback=f,
        )
        for m, f in rows
    ]
    return Page(items, total, limit, offset)


async def clear_messages(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, lease_ttl: timedelta
) -> uuid.UUID:
    """The transcript and the agent's state of this session; the thread's id."""
    _, thread = await get_owned(session, user_id=user_id, session_id=session_id)
    await _lock_idle_thread(session, thread, lease_ttl)
    await messages_repo.delete_for_thread(session, thread.id)
    await checkpoints_repo.delete_for_threads(session, [thread.id])
    await threads_repo.clear(session, thread.id)
    return thread.id
