"""create_app(): the FastAPI application; its lifespan builds and closes every long-lived thing."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from app.agent.checkpointer import open_checkpointer
from app.agent.graph import build_graph
from app.agent.llm import build_model
from app.agent.memory import MemoryStore, open_memory
from app.agent.tools import default_tools
from app.agent.tools.memory import memory_tools
from app.api.errors import install_error_handlers
from app.api.middleware import BodySizeLimitMiddleware, RequestObservabilityMiddleware
from app.api.v1 import api_router
from app.api.v1.health import router as health_router
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker, resolve_database_urls
from app.observability import metrics
from app.observability.logging import configure_logging
from app.observability.pools import pool_reader
from app.observability.runtime import Telemetry, open_telemetry
from app.schema import head_revision, upgrade_to_head
from app.services import housekeeping
from app.services.chat import ChatRuntime

log = structlog.get_logger(__name__)
METRICS_PATH = "/metrics"


def metrics_endpoint(request: Request) -> Response:
    # Plain `def`: Starlette runs it in a thread, as reading every worker's files may touch the disk.
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    urls, embedded = await resolve_database_urls(settings)
    try:
        if settings.run_migrations_on_start:
            await upgrade_to_head(urls.sqlalchemy)
        engine = create_engine(urls, settings)
        checkpointer, checkpoint_pool = await open_checkpointer(
            urls.psycopg, max_size=settings.checkpoint_pool_size, cache_entries=settings.checkpoint_cache_size
        )
        memory: MemoryStore | None = None
        telemetry: Telemetry | None = None
        sweeper: asyncio.Task[None] | None = None
        try:
            telemetry = open_telemetry(
                settings,
                pool_reader=pool_reader(
                    engine, checkpoint_pool, engine_max=settings.db_pool_size + settings.db_max_overflow
                ),
            )
            tools = default_tools()
            if settings.memory_enabled:
                memory = await open_memory(settings, dsn=urls.psycopg, pool=checkpoint_pool)
                tools += memory_tools(memory)
            builder = build_graph(
                build_model(settings, tools),
                tools,
                max_messages=settings.history_max_messages,
                max_chars=settings.history_max_chars,
                memory=memory,
            )
            app.state.engine = engine
            app.state.schema_head = head_revision()
            # The checkpointer's psycopg pool (autocommit) also serves the per-request single statements.
            app.state.chat = ChatRuntime(
                graph=builder.compile(checkpointer=checkpointer),
                db=create_sessionmaker(engine),
                pool=checkpoint_pool,
                settings=settings,
                memory=memory,
                callbacks=telemetry.callbacks,
                tracing=telemetry.tracing,
            )
            sweeper = asyncio.create_task(housekeeping.run(checkpoint_pool, settings))
            log.info(
                "app.started",
                env=settings.app_env.value,
                llm_model=settings.llm_model,
                memory=settings.memory_enabled,
                tracing=telemetry.tracing is not None,
            )
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            if memory is not None:
                await memory.close()  # drains pending extractions while the pools are still open
            if telemetry is not None:
                await telemetry.close()  # after the last turn's spans have ended
            await checkpoint_pool.close()
            await engine.dispose()
    finally:
        if embedded is not None:
            await embedded.release()
        log.info("app.stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    app = FastAPI(
        title=settings.project_name,
        version=settings.release,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        # FastAPI's own OpenTelemetry instrumentation costs on every request and would feed any
        # global tracer; observability is the service's own.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Our own limit rather than FastAPI's max_body_size, whose 413 is plain text, not the error shape.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Outermost, so that refusals by the limits above are counted and logged too.
    app.add_middleware(RequestObservabilityMiddleware, skip_paths={METRICS_PATH})
    app.add_route(METRICS_PATH, metrics_endpoint, include_in_schema=False)
    app.include_router(health_router)
    app.include_router(health_router, prefix="/api/v1")
    app.include_router(api_router)
    return app
