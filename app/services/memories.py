"""The caller's long-term memories: list, search, add, edit, delete, history. Always scoped to one user."""

import uuid

from app.agent.memory import MemoryStore
from app.config import Settings
from app.errors import MemoryDisabledError, NotFoundError, ValidationFailedError
from app.repositories.memories import HistoryRow, MemoryRow
from app.services.sessions import Page


def require(store: MemoryStore | None) -> MemoryStore:
    if store is None:
        raise MemoryDisabledError()
    return store


_TEXT = ("body", "text")


def _check_text(text: str, settings: Settings, *, loc: tuple[str, ...] = _TEXT) -> str:
    text = text.strip()
    name = loc[-1]
    if not text:
        raise ValidationFailedError(f"{name} must not be empty", loc=loc)
    if len(text) > settings.memory_max_chars:
        raise ValidationFailedError(f"{name} is longer than {settings.memory_max_chars} characters", loc=loc)
    return text


async def list_memories(
    store: MemoryStore, *, user_id: uuid.UUID, limit: int, offset: int
) -> Page[MemoryRow]:
    items, total = await store.page(user_id, limit=limit, offset=offset)
    return Page(items, total, limit, offset)


async def search_memories(
    store: MemoryStore, settings: Settings, *, user_id: uuid.UUID, query: str, limit: int
) -> list[MemoryRow]:
    return await store.search(user_id, _check_text(query, settings, loc=("query", "q")), limit=limit)


async def get_memory(store: MemoryStore, *, user_id: uuid.UUID, memory_id: uuid.UUID) -> MemoryRow:
    row = await store.get(user_id, memory_id)
    if row is None:  # someone else's memory is as absent as one that never existed
        raise NotFoundError("Memory not found")
    return row


async def add_memory(store: MemoryStore, settings: Settings, *, user_id: uuid.UUID, text: str) -> MemoryRow:
    memory_id = await store.add(user_id, _check_text(text, settings))
    return await get_memory(store, user_id=user_id, memory_id=memory_id)


async def update_memory(
    store: MemoryStore, settings: Settings, *, user_id: uuid.UUID, memory_id: uuid.UUID, text: str
) -> MemoryRow:
    text = _check_text(text, settings)
    await get_memory(store, user_id=user_id, memory_id=memory_id)
    await store.update(memory_id, text)
    return await get_memory(store, user_id=user_id, memory_id=memory_id)


async def delete_memory(store: MemoryStore, *, user_id: uuid.UUID, memory_id: uuid.UUID) -> None:
    await get_memory(store, user_id=user_id, memory_id=memory_id)
    try:
        await store.delete(memory_id)
    except ValueError:  # mem0: deleted meanwhile by a concurrent request
        raise NotFoundError("Memory not found") from None


async def delete_all(store: MemoryStore, *, user_id: uuid.UUID) -> int:
    return await store.delete_all(user_id)


async def memory_history(store: MemoryStore, *, user_id: uuid.UUID, memory_id: uuid.UUID) -> list[HistoryRow]:
    """Kept after a single delete (its last entry is the DELETE), so it is read by the history's owner."""
    rows = await store.history(user_id, memory_id)
    if not rows:
        raise NotFoundError("Memory not found")
    return rows
