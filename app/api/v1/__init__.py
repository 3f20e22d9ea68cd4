"""Version 1 of the HTTP API."""

from fastapi import APIRouter

from app.api.limits import rate_limit
from app.api.v1 import admin, auth, chat, memories, sessions

api_router = APIRouter(prefix="/api/v1")
# auth and chat name a limit per route; each of the others shares one limit.
api_router.include_router(auth.router)
api_router.include_router(sessions.router, dependencies=[rate_limit("api")])
api_router.include_router(chat.router)
api_router.include_router(memories.router, dependencies=[rate_limit("memories")])
api_router.include_router(admin.router, dependencies=[rate_limit("admin")])
