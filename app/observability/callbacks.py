"""Model, tool and graph-node timings from LangChain's callbacks, into Prometheus."""

import asyncio
from time import perf_counter
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from app.observability import metrics

# A run whose end never arrives (a task killed between its start and end events) must not stay for
# ever: past this many open runs, the oldest are forgotten.
MAX_OPEN_RUNS = 10_000


class MetricsCallbackHandler(BaseCallbackHandler):
    """One per process, shared by every turn: the state of each run lives under its run id until it ends.

    A plain handler run inline: LangChain would hand a non-inline one to a thread for every event.
    """

    run_inline = True
    # Not ignore_agent: LangChain files tool events under it.

    def __init__(self) -> None:
        self._runs: dict[UUID, tuple[float, str]] = {}  # run id -> (start, label)
        self._first_token: dict[UUID, float] = {}  # streamed model calls still waiting for it
        # LangChain sends no end for a model call cancelled inside its asyncio.gather (a client that
        # left mid-stream): the end of the run around it clears it instead.
        self._children: dict[UUID, list[UUID]] = {}

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_retry(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    @property
    def open_runs(self) -> int:
        return len(self._runs) + len(self._first_token) + len(self._children)

    def _start(self, run_id: UUID, label: str, parent_run_id: UUID | None) -> None:
        for table in (self._runs, self._children):
            if len(table) >= MAX_OPEN_RUNS:
                for stale in list(table)[: MAX_OPEN_RUNS // 10]:
                    del table[stale]
                    self._first_token.pop(stale, None)
        self._runs[run_id] = (perf_counter(), label)
        if parent_run_id is not None:
            self._children.setdefault(parent_run_id, []).append(run_id)

    def _finish(self, run_id: UUID) -> tuple[float, str] | None:
        self._first_token.pop(run_id, None)
        for child in self._children.pop(run_id, ()):
            self._runs.pop(child, None)
            self._first_token.pop(child, None)
        started = self._runs.pop(run_id, None)
        if started is None:
            return None
        return perf_counter() - started[0], started[1]

    # --- model calls
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._llm_start(run_id, parent_run_id, metadata, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._llm_start(run_id, parent_run_id, metadata, kwargs)

    def _llm_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        model = (metadata or {}).get("ls_model_name")
        if not model:
            params = kwargs.get("invocation_params") or {}
            model = params.get("model") or params.get("model_name") or "unknown"
        self._start(run_id, str(model), parent_run_id)
        self._first_token[run_id] = self._runs[run_id][0]

    def on_llm_new_token(self, token: Any, *, run_id: UUID, chunk: Any = None, **kwargs: Any) -> None:
        if run_id not in self._first_token:
            return
        message = getattr(chunk, "message", None)
        if not token and not getattr(message, "tool_call_chunks", None):
            return  # the opening chunk only carries the role
        started = self._first_token.pop(run_id)
        metrics.LLM_TTFT.labels(self._runs[run_id][1]).observe(perf_counter() - started)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        finished = self._finish(run_id)
        if finished is None:
            return
        elapsed, model = finished
        metrics.LLM_LATENCY.labels(model).observe(elapsed)
        usage = _usage(response)
        if usage is not None:
            metrics.LLM_TOKENS.labels(model, "input").inc(usage.get("input_tokens", 0))
            metrics.LLM_TOKENS.labels(model, "output").inc(usage.get("output_tokens", 0))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        finished = self._finish(run_id)
        if finished is not None and _counts(error):
            metrics.LLM_ERRORS.labels(finished[1], type(error).__name__).inc()

    # --- tools
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or "unknown"
        self._start(run_id, str(name), parent_run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        finished = self._finish(run_id)
        if finished is not None:
            metrics.TOOL_CALLS.labels(finished[1]).inc()
            metrics.TOOL_LATENCY.labels(finished[1]).observe(finished[0])

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        finished = self._finish(run_id)
        if finished is not None and _counts(error):
            metrics.TOOL_CALLS.labels(finished[1]).inc()
            metrics.TOOL_ERRORS.labels(finished[1]).inc()
            metrics.TOOL_LATENCY.labels(finished[1]).observe(finished[0])

    # --- graph nodes: the chain run named like the node it runs (its children inherit the metadata)
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        node = metadata.get("langgraph_node") if metadata else None
        if node is not None and kwargs.get("name") == node:
            self._start(run_id, str(node), parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        finished = self._finish(run_id)
        if finished is not None:
            metrics.NODE_LATENCY.labels(finished[1]).observe(finished[0])

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        finished = self._finish(run_id)
        if finished is not None and _counts(error):
            metrics.NODE_LATENCY.labels(finished[1]).observe(finished[0])


def _counts(error: BaseException) -> bool:
    """A cancellation is the client leaving, not a failure of the model, tool or node."""
    return isinstance(error, Exception) and not isinstance(error, asyncio.CancelledError)


def _usage(response: LLMResult) -> dict[str, Any] | None:
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                return dict(usage)
    return None
