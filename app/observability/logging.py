"""Structured logs: JSON in production and staging, readable console lines elsewhere.

Lines from the standard library's loggers (uvicorn's errors, libraries) go through the same processors,
so they are JSON too and carry the request's context (request_id, user_id, session_id).
"""

import logging
import sys

import structlog

from app.config import Environment, Settings


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the root handler this module installed, so that configuring again replaces it."""


def configure_logging(settings: Settings) -> None:
    json_logs = settings.app_env in (Environment.production, Environment.staging)
    default = logging.WARNING if settings.app_env == Environment.test else logging.INFO
    level = logging.getLevelNamesMapping()[settings.log_level] if settings.log_level else default
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Plain tracebacks: the console renderer's default (rich, with every local variable) printed tens of
    # thousands of lines for one error, synchronously, freezing the event loop for seconds.
    renderer = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    exceptions = (
        structlog.processors.format_exc_info if json_logs else structlog.processors.StackInfoRenderer()
    )
    structlog.configure(
        processors=[*shared, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        # A cached logger keeps the first configuration for good; tests configure once per app.
        cache_logger_on_first_use=settings.app_env != Environment.test,
    )
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every model and embedding call at INFO: one line per call, on the turn's path. The
    # OpenAI SDK ships its own copy of httpx under another name.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
