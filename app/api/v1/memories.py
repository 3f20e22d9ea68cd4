"""The caller's long-term memories."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.agent.memory import MemoryStore
from app.api.deps import CurrentUser, RuntimeDep, SettingsDep
from app.api.limits import rate_limit
from app.schemas.common import CleanStr, Page, PageParams
from app.schemas.memories import (
    MemoriesDeleted,
    MemoryCreate,
    MemoryHistory,
    MemoryHistoryEntry,
    MemoryHit,
    MemoryRead,
    MemorySearchResults,
    MemoryUpdate,
)
from app.services import memories as memories_service

router = APIRouter(prefix="/memories", tags=["memories"], dependencies=[rate_limit("memories")])
Paging = Annotated[PageParams, Query()]


async def get_memory_store(rt: RuntimeDep) -> MemoryStore:
    return memories_service.require(rt.memory)


Store = Annotated[MemoryStore, Depends(get_memory_store)]


@router.get("", response_model=Page[MemoryRead])
async def list_memories(user: CurrentUser, store: Store, page: Paging) -> Page[MemoryRead]:
    result = await memories_service.list_memories(
        store, user_id=user.id, limit=page.limit, offset=page.offset
    )
    return Page[MemoryRead].model_validate(result, from_attributes=True)


@router.get("/search", response_model=MemorySearchResults)
async def search_memories(
    user: CurrentUser,
    store: Store,
    settings: SettingsDep,
    q: Annotated[CleanStr, Query(min_length=1, max_length=2000)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> MemorySearchResults:
    hits = await memories_service.search_memories(store, settings, user_id=user.id, query=q, limit=limit)
    return MemorySearchResults(items=[MemoryHit.model_validate(h) for h in hits])


@router.post("", response_model=MemoryRead, status_code=status.HTTP_201_CREATED)
async def add_memory(
    body: MemoryCreate, user: CurrentUser, store: Store, settings: SettingsDep
) -> MemoryRead:
    row = await memories_service.add_memory(store, settings, user_id=user.id, text=body.text)
    return MemoryRead.model_validate(row)


@router.delete("", response_model=MemoriesDeleted)
async def delete_all_memories(user: CurrentUser, store: Store) -> MemoriesDeleted:
    return MemoriesDeleted(deleted=await memories_service.delete_all(store, user_id=user.id))


@router.get("/{memory_id}", response_model=MemoryRead)
async def get_memory(memory_id: uuid.UUID, user: CurrentUser, store: Store) -> MemoryRead:
    return MemoryRead.model_validate(
        await memories_service.get_memory(store, user_id=user.id, memory_id=memory_id)
    )


@router.patch("/{memory_id}", response_model=MemoryRead)
async def update_memory(
    memory_id: uuid.UUID, body: MemoryUpdate, user: CurrentUser, store: Store, settings: SettingsDep
) -> MemoryRead:
    row = await memories_service.update_memory(
        store, settings, user_id=user.id, memory_id=memory_id, text=body.text
    )
    return MemoryRead.model_validate(row)


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_memory(memory_id: uuid.UUID, user: CurrentUser, store: Store) -> Response:
    await memories_service.delete_memory(store, user_id=user.id, memory_id=memory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{memory_id}/history", response_model=MemoryHistory)
async def memory_history(memory_id: uuid.UUID, user: CurrentUser, store: Store) -> MemoryHistory:
    rows = await memories_service.memory_history(store, user_id=user.id, memory_id=memory_id)
    return MemoryHistory(memory_id=memory_id, items=[MemoryHistoryEntry.model_validate(r) for r in rows])
