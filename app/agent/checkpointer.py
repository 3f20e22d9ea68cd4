"""The LangGraph Postgres checkpointer over its own psycopg pool, with a small read cache."""

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    copy_checkpoint,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

_Key = tuple[str, str, str]


def _key(config: RunnableConfig) -> _Key | None:
    conf = config.get("configurable") or {}
    checkpoint_id = conf.get("checkpoint_id")
    if not checkpoint_id:
        return None
    return (str(conf["thread_id"]), str(conf.get("checkpoint_ns", "")), str(checkpoint_id))


class CachedPostgresSaver(AsyncPostgresSaver):
    """Serves reads of a given checkpoint id from memory when this process just wrote it.

    A checkpoint never changes once written, and every turn starts by reading the checkpoint the
    previous turn wrote. Keeping recent ones saves a query and deserialising the message window.
    Nothing depends on a hit: another worker, a restart or an eviction reads PostgreSQL as before,
    and reads without a checkpoint id (the latest one) always go to PostgreSQL.
    """

    def __init__(self, conn: AsyncConnectionPool, *, max_entries: int) -> None:
        super().__init__(conn)  # type: ignore[arg-type]
        self._cache: OrderedDict[_Key, CheckpointTuple] = OrderedDict()
        self._max_entries = max_entries

    def forget_threads(self, thread_ids: list[uuid.UUID]) -> None:
        """Drop the cached checkpoints of threads that were deleted or cleared: nothing of a deleted
        conversation stays in this process's memory."""
        gone = {str(t) for t in thread_ids}
        for key in [k for k in self._cache if k[0] in gone]:
            del self._cache[key]

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        key = _key(config)
        if key is not None and (hit := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            # LangGraph updates the checkpoint it runs from in place: hand out a copy.
            return hit._replace(checkpoint=copy_checkpoint(hit.checkpoint))
        return await super().aget_tuple(config)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        next_config = await super().aput(config, checkpoint, metadata, new_versions)
        key = _key(next_config)
        if key is not None and self._max_entries > 0:
            parent_key = _key(config)
            parent: RunnableConfig | None = None
            if parent_key is not None:
                thread_id, ns, parent_id = parent_key
                parent = {
                    "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}
                }
            stored = get_serializable_checkpoint_metadata(config, metadata)
            self._cache[key] = CheckpointTuple(next_config, copy_checkpoint(checkpoint), stored, parent, [])
            if len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return next_config

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        # Pending writes belong to the stored tuple: forget the cached copy rather than patch it.
        if (key := _key(config)) is not None:
            self._cache.pop(key, None)
        await super().aput_writes(config, writes, task_id, task_path)


async def _take_setup_lock(conn: AsyncConnection[Any], attempts: int = 1200) -> None:
    """Polls rather than waits: setup() runs CREATE INDEX CONCURRENTLY, which waits for every open
    snapshot, including that of a session blocked in pg_advisory_lock: a deadlock Postgres cannot see."""
    for _ in range(attempts):
        cur = await conn.execute("SELECT pg_try_advisory_lock(hashtext('agent-platform:checkpoint-setup'))")
        row = await cur.fetchone()
        if row and row[0]:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("another process held the checkpoint setup lock for a minute")


async def open_checkpointer(
    pool: AsyncConnectionPool, url: str, *, cache_entries: int
) -> CachedPostgresSaver:
    """The saver over the process's autocommit pool (app/db), its tables created if missing."""
    saver = CachedPostgresSaver(pool, max_entries=cache_entries)
    # Workers starting together on a fresh database would race to create LangGraph's tables: one at a
    # time, under a session lock on a connection outside the pool (which may hold only one).
    async with await AsyncConnection.connect(url, autocommit=True) as lock_conn:
        await _take_setup_lock(lock_conn)
        await saver.setup()  # the lock goes with the connection
    return saver
