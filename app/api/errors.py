"""Every error leaves the service as {"error": ..., "detail": ...}."""

from typing import Any

import psycopg
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.outage import is_outage
from app.errors import AppError, DatabaseUnavailableError

log = structlog.get_logger(__name__)

_HTTP_ERROR_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_body(error: str, detail: Any) -> dict[str, Any]:
    return {"error": error, "detail": detail}


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Echoing the rejected input back could reflect secrets (passwords) or huge bodies.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def count_event(request: Request, status: int, error: str) -> None:
    """Tally a failed (5xx) or refused (429) request for the admin overview; no I/O here."""
    recorder = getattr(getattr(request.app.state, "runtime", None), "api_events", None)
    if recorder is not None:
        recorder.record(status, error)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        count_event(request, exc.status_code, exc.error)
        return JSONResponse(
            error_body(exc.error, exc.body_detail()), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("validation_error", _clean_validation_errors(exc)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _HTTP_ERROR_NAMES.get(exc.status_code, "http_error")
        count_event(request, exc.status_code, name)
        return JSONResponse(error_body(name, exc.detail), status_code=exc.status_code, headers=exc.headers)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if is_outage(exc):  # the database is down or restarting: a 503 to retry, not a bug
            log.warning("http.database_unavailable", path=request.url.path, error_type=type(exc).__name__)
            return await app_error(request, DatabaseUnavailableError())
        return await unexpected(request, exc)

    # Handled here rather than by the catch-all below, which Starlette re-raises to the server.
    for database_exc in (psycopg.Error, PoolTimeout, sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError):
        app.add_exception_handler(database_exc, database_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled_error", path=request.url.path, error_type=type(exc).__name__)
        count_event(request, 500, "internal_error")
        return JSONResponse(error_body("internal_error", "An unexpected error occurred"), status_code=500)
