"""Structured logs: JSON in production and staging, readable console lines elsewhere."""

import logging
import sys

import structlog

from app.config import Environment, Settings


def configure_logging(settings: Settings) -> None:
    json_logs = settings.app_env in (Environment.production, Environment.staging)
    level = logging.WARNING if settings.app_env == Environment.test else logging.INFO
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if json_logs else structlog.processors.StackInfoRenderer(),
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer(colors=False),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
