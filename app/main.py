"""create_app(): the FastAPI application; its lifespan builds and closes every long-lived thing."""

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from app.api.errors import install_error_handlers
from app.api.middleware import (
    BodySizeLimitMiddleware,
    RequestObservabilityMiddleware,
    SecurityHeadersMiddleware,
)
from app.api.protocol import protocol_router
from app.api.v1 import api_router
from app.api.v1.health import router as health_router
from app.api.web import install_web
from app.config import Settings, get_settings
from app.db.migrations import DatabaseSetupError
from app.observability import metrics
from app.observability.logging import configure_logging
from app.runtime import Runtime, open_runtime
from app.services import housekeeping, shutdown
from app.services.api_events import ApiEventCounter
from app.services.chat import dispatch, leases, run_hub, watch
from app.services.memory_jobs import MemoryJobs

log = structlog.get_logger(__name__)
METRICS_PATH = "/metrics"
_SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def metrics_endpoint(request: Request) -> Response:
    # Plain `def`: Starlette runs it in a thread, as reading every worker's files may touch the disk.
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@contextlib.contextmanager
def on_shutdown_signal(callback: Callable[[], None]) -> Any:
    """Call `callback` on the event loop when SIGTERM or SIGINT arrives, then hand the signal on to
    the server's own handler (uvicorn's, inside gunicorn's worker too), which stops accepting
    connections and waits for those in flight."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in _SHUTDOWN_SIGNALS}

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        chained = previous[signal.Signals(sig)]
        if callable(chained):
            chained(sig, frame)

    for sig in _SHUTDOWN_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


async def _stop(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    try:
        async with open_runtime(settings) as rt:
            app.state.runtime = rt
            jobs: MemoryJobs | None = None
            if rt.memory is not None and settings.memory_jobs_in_process:
                jobs = MemoryJobs(rt)
                jobs.start()
            rt.memory_jobs = jobs
            events = ApiEventCounter(rt.db.pool)
            rt.api_events = events
            keeper = asyncio.create_task(leases.keep_alive(rt))
            sweeper = asyncio.create_task(housekeeping.run(rt.db.pool, settings))
            cancels = asyncio.create_task(watch.watch_cancels(rt))
            lost = asyncio.create_task(watch.watch_lost(rt))
            dispatcher = asyncio.create_task(dispatch.keep_dispatching(rt))
            streams = asyncio.create_task(run_hub.poll(rt))
            draining: list[asyncio.Task[None]] = []
            log.info(
                "app.started",
                env=settings.app_env.value,
                llm_model=settings.llm_model,
                memory=settings.memory_enabled,
                tracing=rt.tracing is not None,
            )
            try:
                with on_shutdown_signal(lambda: draining.append(asyncio.create_task(shutdown.drain(rt)))):
                    yield
            finally:
                await _stop(dispatcher)
                await _cut_remaining(rt, draining)
                await _stop(cancels)
                await _stop(lost)
                await _stop(streams)
                await events.close()  # after the last turns, whose errors it may count
                await _stop(sweeper)
                if jobs is not None:
                    await jobs.stop()
                await _stop(keeper)
    except DatabaseSetupError as exc:
        log.error("app.database_not_ready", detail=str(exc))
        raise DatabaseSetupError(str(exc)) from None
    log.info("app.stopped")


async def _cut_remaining(rt: Runtime, draining: list[asyncio.Task[None]]) -> None:
    """The server stopped waiting: any turn still here ends now, its lease released."""
    rt.draining = True
    for task in draining:
        await _stop(task)
    for handle in list(rt.runs.values()):
        handle.cut_now()
    await shutdown.wait_for_runs(rt, until=asyncio.get_running_loop().time() + 5)
    # Background runs end as error (cut) or cancelled, their status written, before the pools close.
    await watch.wait_for_tasks(rt, within=5)


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
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            # LangGraph's browser clients (agent protocol): their key header, and the run headers they read.
            allow_headers=["Authorization", "Content-Type", "X-Api-Key", "X-Auth-Scheme", "Last-Event-ID"],
            expose_headers=["Content-Location", "Location", "X-Pagination-Next", "X-Pagination-Total"],
        )
    # Our own limit rather than FastAPI's max_body_size, whose 413 is plain text, not the error shape.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware, relaxed_paths={"/docs", "/redoc", "/docs/oauth2-redirect"})
    # Outermost, so that refusals by the limits above are counted and logged too.
    app.add_middleware(RequestObservabilityMiddleware, skip_paths={METRICS_PATH})
    app.add_route(METRICS_PATH, metrics_endpoint, include_in_schema=False)
    app.include_router(health_router)
    app.include_router(health_router, prefix="/api/v1")
    app.include_router(api_router)
    app.include_router(protocol_router)  # LangGraph's Agent Protocol at the root (docs/agent-protocol.md)
    install_web(app)
    return app
