"""LangGraph's Agent Protocol, the part a chat client needs, at the root paths its clients use
(docs/agent-protocol.md). Every route names its rate limit first."""

from fastapi import APIRouter

from app.api.protocol import assistants, info, runs, threads

protocol_router = APIRouter(tags=["agent protocol"])
protocol_router.include_router(info.router)
protocol_router.include_router(assistants.router)
protocol_router.include_router(threads.router)
protocol_router.include_router(runs.router)
