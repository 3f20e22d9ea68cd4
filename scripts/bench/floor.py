"""The floor: a bare FastAPI app making the same one LLM call per turn, and nothing else.

No database, graph, auth, memory or limits: what is left is HTTP in, one OpenAI-client call out, and
the reply back, the least any chat service does. The benchmark runs it beside the app, under the same
pinning. `FLOOR_LLM_URL` and `FLOOR_LLM_MODEL` point it at the fake LLM:
`FLOOR_LLM_URL=http://127.0.0.1:9100/v1 python -m uvicorn scripts.bench.floor:create_app --factory`.
"""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI, DefaultAioHttpClient
from pydantic import BaseModel

SYSTEM = "You are a helpful assistant."


class ChatIn(BaseModel):
    message: str


class ChatOut(BaseModel):
    reply: str


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app() -> FastAPI:
    url, model = os.environ["FLOOR_LLM_URL"], os.environ.get("FLOOR_LLM_MODEL", "fake-model")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The transport the app's client uses (app/agent/openai_client.py): the call costs the same.
        http = DefaultAioHttpClient()
        app.state.llm = AsyncOpenAI(
            base_url=url, api_key="not-needed", max_retries=0, timeout=30.0, http_client=http
        )
        yield
        await app.state.llm.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    def messages(text: str) -> Any:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/chat")
    async def chat(body: ChatIn, request: Request) -> ChatOut:
        llm: AsyncOpenAI = request.app.state.llm
        r = await llm.chat.completions.create(model=model, messages=messages(body.message))
        return ChatOut(reply=r.choices[0].message.content or "")

    @app.post("/chat/stream")
    async def chat_stream(body: ChatIn, request: Request) -> StreamingResponse:
        llm: AsyncOpenAI = request.app.state.llm

        async def events() -> AsyncIterator[str]:
            stream = await llm.chat.completions.create(
                model=model,
                messages=messages(body.message),
                stream=True,
                stream_options={"include_usage": True},
            )
            parts: list[str] = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
                    yield _sse("token", {"content": parts[-1]})
            yield _sse("done", {"reply": "".join(parts)})

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
