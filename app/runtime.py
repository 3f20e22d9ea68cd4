"""Runtime: what a process builds once (database, graph, memory, tracing) and hands to every request,
job and command. The API's lifespan, the job worker, the CLI and evals all open it the same way."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from anyio import CancelScope
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tools import BaseTool
from langgraph.graph.state import CompiledStateGraph

from app.agent.checkpointer import CachedPostgresSaver, open_checkpointer
from app.agent.graph import build_graph
from app.agent.llm import build_model
from app.agent.memory import MemoryStore, open_memory
from app.agent.openai_client import build_client
from app.agent.tools import default_tools
from app.agent.tools.memory import memory_tools
from app.config import Settings
from app.db import Database, open_database
from app.observability.pools import pool_reader
from app.observability.runtime import open_telemetry
from app.observability.tracing import Tracing
from app.repositories.leases import TurnLimits


@dataclass
class RunHandle:
    """A turn running in this process: its lease is renewed while it runs, shutdown can cut it, and a
    cancel (from any process) stops it. Both end the turn's current wait at once, in whichever task
    drives it, so a request's turn and a background run stop the same way."""

    thread_id: uuid.UUID
    cut: bool = False
    stop_mode: str | None = None  # cancel | interrupt | rollback, once a stop was asked for
    timeout: asyncio.Timeout | None = None  # the turn's current wait, which cutting ends at once

    @property
    def ending(self) -> bool:
        return self.cut or self.stop_mode is not None

    def cut_now(self) -> None:
        self.cut = True
        self.expire()

    def stop(self, mode: str) -> None:
        if self.stop_mode is None:
            self.stop_mode = mode
        self.expire()

    def expire(self) -> None:
        if self.timeout is not None and not self.timeout.expired():
            self.timeout.reschedule(asyncio.get_running_loop().time())


@dataclass
class BackgroundRun:
    """A run (POST .../runs) executing in a task of this process. Cancelling `scope` stops its turn
    the way a client's disconnect stops a streamed one: the turn's shielded cleanup still runs."""

    task: asyncio.Task[None]
    scope: CancelScope


class JobConsumer(Protocol):
    async def idle(self, within: float = 30.0) -> None: ...


class EventRecorder(Protocol):
    """Tallies requests that failed (5xx) or were refused (429); app/services/api_events.py."""

    def record(self, status: int, error: str) -> None: ...


class RunProgress(Protocol):
    """Where the runs this process's streams follow stand; app/services/chat/run_hub.py."""

    def advance(self, run_id: uuid.UUID, seq: int, *, finished: bool = False, gone: bool = False) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    db: Database
    graph: CompiledStateGraph[Any, Any, Any, Any]
    memory: MemoryStore | None = None
    # Built once; every turn's run gets the same handlers (metrics, and tracing when configured).
    callbacks: list[BaseCallbackHandler] = field(default_factory=list)
    tracing: Tracing | None = None
    # This process's turns, by run id.
    runs: dict[uuid.UUID, RunHandle] = field(default_factory=dict)
    # This process's background runs (POST .../runs), by run id.
    background_runs: dict[uuid.UUID, BackgroundRun] = field(default_factory=dict)
    # Set when a turn here queued a memory job, so this process's consumer starts at once.
    jobs_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a run here ended or was queued: this process's dispatcher looks for queued runs at once.
    dispatch_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # The agent's tools by name (a person edits the arguments of one waiting for approval).
    tools: dict[str, BaseTool] = field(default_factory=dict)
    draining: bool = False  # shutting down: no new turns
    memory_jobs: JobConsumer | None = None  # this process's consumer, when it runs one
    api_events: EventRecorder | None = None  # set by the API's lifespan
    run_hub: RunProgress | None = None  # made by the first stream of a run or the API's lifespan

    def forget_threads(self, thread_ids: list[uuid.UUID]) -> None:
        """Deleted or cleared threads: this process keeps nothing of them in memory."""
        if isinstance(self.graph.checkpointer, CachedPostgresSaver):
            self.graph.checkpointer.forget_threads(thread_ids)

    @property
    def lease_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_ttl_seconds)

    @property
    def renew_every(self) -> float:
        """Seconds between renewals of what this process holds (turn leases, job claims): a third of
        the TTL, so two renewals may fail before anything expires."""
        return self.settings.lease_ttl_seconds / 3

    @property
    def limits(self) -> TurnLimits:
        s = self.settings
        return TurnLimits(
            message_quota=s.quota_messages_per_day,
            token_quota=s.quota_tokens_per_day,
            per_user=s.max_streams_per_user,
            total=s.max_streams_total,
        )


@asynccontextmanager
async def open_runtime(settings: Settings, *, migrate: bool | None = None) -> AsyncIterator[Runtime]:
    """Everything a process needs, opened in order and closed in reverse."""
    async with open_database(settings, migrate=migrate) as db:
        checkpointer = await open_checkpointer(
            db.pool, db.urls.psycopg, cache_entries=settings.checkpoint_cache_size
        )
        telemetry = open_telemetry(
            settings,
            pool_reader=pool_reader(
                db.engine, db.pool, engine_max=settings.db_pool_size + settings.db_max_overflow
            ),
        )
        memory: MemoryStore | None = None
        llm_client = build_client(settings)
        try:
            tools = default_tools()
            if settings.memory_enabled:
                memory = await open_memory(settings, dsn=db.urls.psycopg, pool=db.pool, client=llm_client)
                tools += memory_tools(memory)
            builder = build_graph(
                build_model(settings, tools, llm_client),
                tools,
                max_messages=settings.history_max_messages,
                max_chars=settings.history_max_chars,
                memory=memory,
            )
            yield Runtime(
                settings=settings,
                db=db,
                graph=builder.compile(checkpointer=checkpointer),
                memory=memory,
                callbacks=telemetry.callbacks,
                tracing=telemetry.tracing,
                tools={t.name: t for t in tools},
            )
        finally:
            if memory is not None:
                await memory.close()
            await llm_client.close()
            await telemetry.close()  # after the last turn's spans have ended
