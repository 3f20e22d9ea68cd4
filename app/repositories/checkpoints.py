"""SQL over LangGraph's checkpoint tables, so a delete is atomic with our own rows.

The saver's own `adelete_thread` runs on its own pool and transaction; deleting here instead means
a session and its checkpoints disappear together or not at all. Tests count rows in these tables,
so a schema change in langgraph-checkpoint-postgres is caught.
"""

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHECKPOINT_TABLES = ("checkpoint_writes", "checkpoint_blobs", "checkpoints")

# Blobs are keyed by channel version, not by checkpoint: drop the versions no checkpoint names.
_DELETE_UNREFERENCED_BLOBS = text("""
DELETE FROM checkpoint_blobs b
WHERE b.thread_id = :t
  AND NOT EXISTS (
    SELECT 1 FROM checkpoints c
    WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
      AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version
  )
""")


async def delete_for_threads(session: AsyncSession, thread_ids: Sequence[uuid.UUID]) -> None:
    if not thread_ids:
        return
    ids = [str(t) for t in thread_ids]
    for table in CHECKPOINT_TABLES:
        await session.execute(text(f"DELETE FROM {table} WHERE thread_id = ANY(:ids)"), {"ids": ids})  # noqa: S608


async def delete_newer_than(session: AsyncSession, thread_id: uuid.UUID, checkpoint_id: str | None) -> None:
    """Drop what a failed run wrote after the last good checkpoint (everything when there is none)."""
    if checkpoint_id is None:
        await delete_for_threads(session, [thread_id])
        return
    for table in ("checkpoint_writes", "checkpoints"):
        await session.execute(
            text(f"DELETE FROM {table} WHERE thread_id = :t AND checkpoint_id > :c"),  # noqa: S608
            {"t": str(thread_id), "c": checkpoint_id},
        )
    await session.execute(_DELETE_UNREFERENCED_BLOBS, {"t": str(thread_id)})
