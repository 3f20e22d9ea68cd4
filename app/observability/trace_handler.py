"""Langfuse's LangChain handler, made to close model calls that LangChain never reports as ended.

Imported only when tracing is configured: importing it imports the Langfuse SDK.
"""

import asyncio
from typing import Any
from uuid import UUID

from langfuse.langchain import CallbackHandler


class TurnTracingHandler(CallbackHandler):
    """A model call cancelled inside LangChain's asyncio.gather (a client that left mid-stream, a turn
    past its deadline) gets neither an end nor an error event. The SDK would keep its generation open
    for ever, one per such turn: here the end of the run around it ends it as cancelled.

    Runs inline on the loop, like the metrics handler: otherwise LangChain hands every event (each
    streamed token too) to the default thread pool, which cost about 6 ms more per tool turn here and
    competes with all else that pool serves. Each run's span context stays in the task that runs it.
    """

    run_inline = True

    def __init__(self, *, public_key: str) -> None:
        super().__init__(public_key=public_key)
        self._open_calls: dict[UUID, set[UUID]] = {}  # parent run id -> its model calls not ended yet
        self._trace_ids: dict[UUID, str] = {}  # root run id -> its trace, until the turn takes it

    def on_chain_start(self, *args: Any, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> Any:
        result = super().on_chain_start(*args, run_id=run_id, parent_run_id=parent_run_id, **kw)
        if parent_run_id is None and run_id in self._runs:
            # Set by the call above, with no await in between: the trace this root run just opened.
            self._trace_ids[run_id] = self._runs[run_id].trace_id
        return result

    def take_trace_id(self, run_id: UUID) -> str | None:
        """The trace opened by the root run `run_id`, once (the entry is dropped)."""
        return self._trace_ids.pop(run_id, None)

    def on_chat_model_start(
        self, *args: Any, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any
    ) -> Any:
        self._opened(run_id, parent_run_id)
        return super().on_chat_model_start(*args, run_id=run_id, parent_run_id=parent_run_id, **kw)

    def on_llm_start(self, *args: Any, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> Any:
        self._opened(run_id, parent_run_id)
        return super().on_llm_start(*args, run_id=run_id, parent_run_id=parent_run_id, **kw)

    def on_llm_end(self, *args: Any, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> Any:
        self._closed(run_id, parent_run_id)
        return super().on_llm_end(*args, run_id=run_id, parent_run_id=parent_run_id, **kw)

    def on_llm_error(self, *args: Any, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any) -> Any:
        self._closed(run_id, parent_run_id)
        return super().on_llm_error(*args, run_id=run_id, parent_run_id=parent_run_id, **kw)

    def on_chain_end(self, *args: Any, run_id: UUID, **kw: Any) -> Any:
        self._end_orphans(run_id)
        return super().on_chain_end(*args, run_id=run_id, **kw)

    def on_chain_error(self, *args: Any, run_id: UUID, **kw: Any) -> Any:
        self._end_orphans(run_id)
        return super().on_chain_error(*args, run_id=run_id, **kw)

    @property
    def open_calls(self) -> int:
        return sum(len(calls) for calls in self._open_calls.values())

    def _opened(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        if parent_run_id is not None:
            self._open_calls.setdefault(parent_run_id, set()).add(run_id)

    def _closed(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        calls = self._open_calls.get(parent_run_id) if parent_run_id is not None else None
        if calls is not None:
            calls.discard(run_id)
            if not calls:
                del self._open_calls[parent_run_id]  # type: ignore[arg-type]

    def _end_orphans(self, parent_run_id: UUID) -> None:
        for run_id in self._open_calls.pop(parent_run_id, ()):
            super().on_llm_error(
                asyncio.CancelledError("cancelled: the run around it ended first"),
                run_id=run_id,
                parent_run_id=parent_run_id,
            )
