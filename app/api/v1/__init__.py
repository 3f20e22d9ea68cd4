"""Version 1 of the HTTP API."""

from fastapi import APIRouter

from app.api.v1 import admin, auth, chat, history, memories, runs, sessions

# Every route names its rate limit: per route in auth, chat and runs, on the router in the others.
api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(sessions.router)
api_router.include_router(chat.router)
api_router.include_router(runs.router)
api_router.include_router(history.router)
api_router.include_router(memories.router)
api_router.include_router(admin.router)
