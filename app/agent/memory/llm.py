"""mem0's extraction call, made by the process's one async model client on the event loop.

mem0 calls its LLM synchronously from a job thread. Its own client is a second, synchronous OpenAI
client whose HTTP parsing is Python; this hands the call to the client the agent already uses (one
connection pool, the compiled aiohttp parser, no request re-validation): about 1 ms less CPU a job.
"""

import asyncio
import concurrent.futures
import threading
from typing import Any

from app.agent.openai_client import DirectCompletions
from app.config import Settings

# The extraction call's parameters; mem0's own (unused) client is configured with them too.
EXTRACTION_PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 1000}


class LoopLLM:
    """Duck-types mem0's LLM (`generate_response`); closed with the memory store."""

    def __init__(self, completions: DirectCompletions, loop: asyncio.AbstractEventLoop, settings: Settings):
        self._completions = completions
        self._loop = loop
        self._model = settings.memory_llm_model or settings.llm_model
        # The client's own timeout bounds each attempt; this bounds the wait for all of them.
        self._wait = settings.llm_call_limit + 5.0
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def generate_response(
        self, messages: list[dict[str, Any]], response_format: Any = None, **kwargs: Any
    ) -> str:
        if kwargs.get("tools"):
            raise ValueError("tool calls are not used by memory extraction")
        payload: dict[str, Any] = {"model": self._model, "messages": messages, **EXTRACTION_PARAMS}
        if response_format:
            payload["response_format"] = response_format
        with self._lock:
            if self._closed:
                raise RuntimeError("the memory store is closed")
            future = asyncio.run_coroutine_threadsafe(self._completions.create(**payload), self._loop)
            self._pending.add(future)
        try:
            response = future.result(self._wait)
        finally:
            with self._lock:
                self._pending.discard(future)
        content = response["choices"][0]["message"].get("content")
        return content if isinstance(content, str) else ""

    def close(self) -> None:
        """Cancel calls in flight, so that no job thread waits on a loop that is going away."""
        with self._lock:
            self._closed = True
            for future in self._pending:
                future.cancel()
