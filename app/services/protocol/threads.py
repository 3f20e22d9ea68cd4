"""Threads: our sessions under the protocol's names (the thread_id is the session's id)."""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from app.errors import ConflictError, NotFoundError, ThreadBusyError
from app.repositories import protocol as repo
from app.repositories.protocol import ThreadRow
from app.runtime import Runtime
from app.services import sessions as sessions_service
from app.services.chat import runs as runs_service
from app.services.protocol import messages, state

log = structlog.get_logger(__name__)

DELETE_WAIT_SECONDS = 5.0  # a deleted thread's running run has this long to stop


@dataclass
class Thread:
    thread_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    metadata: dict[str, Any]
    status: str
    values: dict[str, Any] | None
    interrupts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def _thread(row: ThreadRow, values: dict[str, Any] | None) -> Thread:
    interrupts: dict[str, list[dict[str, Any]]] = {}
    if row.waiting is not None:
        pending = state.pending_interrupt(row.waiting)
        interrupts[messages.approval_task(row.waiting.id, pending)["id"]] = [pending]
    return Thread(
        thread_id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        state_updated_at=row.updated_at,
        metadata=row.metadata,
        status=row.status,
        values=values,
        interrupts=interrupts,
    )


async def create(
    rt: Runtime,
    *,
    user_id: uuid.UUID,
    thread_id: uuid.UUID | None,
    metadata: dict[str, Any],
    if_exists: str,
) -> Thread:
    """A new session under `thread_id` (or a new id). An id already taken: 409, or with `do_nothing`
    the existing thread when it is the caller's."""
    session_id = thread_id or uuid.uuid4()
    async with rt.db.pool.connection() as conn:
        created = await repo.create_thread(
            conn,
            session_id=session_id,
            user_id=user_id,
            name=sessions_service.DEFAULT_NAME,
            metadata=metadata,
        )
        row = await repo.get_thread(conn, session_id=session_id, user_id=user_id)
    if row is None or (not created and if_exists != "do_nothing"):
        raise ConflictError(f"Thread {session_id} already exists")
    if created:
        log.info("protocol.thread_created", session_id=str(session_id))
        return _thread(row, None)
    return await get(rt, user_id=user_id, session_id=session_id)


async def get(rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID) -> Thread:
    row = await state.thread_row(rt, user_id=user_id, session_id=session_id)
    current = await state.head(rt, row)
    return _thread(row, current.values if current.checkpoint is not None else None)


async def search(
    rt: Runtime,
    *,
    user_id: uuid.UUID,
    metadata: dict[str, Any],
    ids: list[uuid.UUID] | None,
    status: str | None,
    sort_by: str,
    descending: bool,
    limit: int,
    offset: int,
) -> list[Thread]:
    """The caller's threads; each one's values hold only its first message (what a list shows)."""
    async with rt.db.pool.connection() as conn:
        rows = await repo.search_threads(
            conn,
            user_id=user_id,
            metadata=metadata,
            ids=ids,
            status=status,
            sort_by=sort_by,
            descending=descending,
            limit=limit,
            offset=offset,
        )
    found: list[Thread] = []
    for row in rows:
        first = row.first_message
        values = None if first is None else {"messages": messages.from_transcript(first)}
        found.append(_thread(row, values))
    return found


async def delete(rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Cancel the thread's runs, wait for a running one to stop, then delete the session with its
    transcript, runs and checkpoints."""
    await state.thread_row(rt, user_id=user_id, session_id=session_id)
    async with rt.db.pool.connection() as conn:
        unfinished = await repo.unfinished_runs(conn, session_id=session_id)
    for run_id in unfinished:
        await runs_service.cancel_run(rt, user_id=user_id, session_id=session_id, run_id=run_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DELETE_WAIT_SECONDS
    while unfinished:
        async with rt.db.pool.connection() as conn:
            if not await repo.leased(conn, session_id=session_id):
                break
        if loop.time() >= deadline:
            raise ThreadBusyError()
        await asyncio.sleep(rt.settings.run_stream_poll_seconds)
    async with rt.db.sessions() as session, session.begin():
        try:
            thread_row_id = await sessions_service.delete_session(
                session, user_id=user_id, session_id=session_id, lease_ttl=rt.lease_ttl
            )
        except NotFoundError:
            raise NotFoundError(f"Thread {session_id} not found") from None
    rt.forget_threads([thread_row_id])
