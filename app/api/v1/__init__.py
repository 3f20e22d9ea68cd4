"""Version 1 of the HTTP API."""

from fastapi import APIRouter

from app.api.v1 import admin, auth, chat, memories, sessions

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(sessions.router)
api_router.include_router(chat.router)
api_router.include_router(memories.router)
api_router.include_router(admin.router)
