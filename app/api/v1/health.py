"""Liveness and readiness."""

from fastapi import APIRouter, Request

from app.services.health import check_ready

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> dict[str, str]:
    revision = await check_ready(request.app.state.engine, request.app.state.schema_head)
    return {"status": "ready", "database": "ok", "schema": str(revision)}
