"""Liveness and readiness."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.errors import error_body
from app.schema import current_revision

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response_model=None)
async def ready(request: Request) -> dict[str, str] | JSONResponse:
    engine = request.app.state.engine
    expected = request.app.state.schema_head
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        revision = await current_revision(engine)
    except Exception:
        return JSONResponse(error_body("not_ready", "database unreachable"), status_code=503)
    if revision != expected:
        return JSONResponse(
            error_body("not_ready", f"database schema at {revision}, expected {expected}"), status_code=503
        )
    return {"status": "ready", "database": "ok", "schema": str(revision)}
