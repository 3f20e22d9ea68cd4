"""Langfuse tracing: one trace per turn, a span per graph node, the model calls under them.

Built once by the lifespan, and only with both keys: without them nothing is imported or built (the
SDK would warn on every client it makes). Spans leave through a background thread with a bounded
queue and a deadline per export, so a Langfuse that is slow or down never holds up a chat.
"""

import asyncio
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import structlog
from langchain_core.callbacks import BaseCallbackHandler

from app.config import Settings

if TYPE_CHECKING:
    from langfuse import Langfuse
    from opentelemetry.sdk.trace import TracerProvider

    from app.observability.trace_handler import TurnTracingHandler

log = structlog.get_logger(__name__)
TRACE_NAME = "chat.turn"
FEEDBACK_SCORE = "user_feedback"


@dataclass
class Tracing:
    client: "Langfuse"
    handler: BaseCallbackHandler
    provider: "TracerProvider"
    tags: list[str]
    timeout: float

    def run_metadata(self, *, user_id: uuid.UUID, session_id: uuid.UUID) -> dict[str, Any]:
        """Run-config metadata the handler turns into the trace's name, user, session and tags."""
        return {
            "langfuse_trace_name": TRACE_NAME,
            "langfuse_user_id": str(user_id),
            "langfuse_session_id": str(session_id),
            "langfuse_tags": self.tags,
        }

    def take_trace_id(self, run_id: uuid.UUID) -> str | None:
        """The trace of the turn whose graph run had `run_id` (the run config's run_id); once."""
        return cast("TurnTracingHandler", self.handler).take_trace_id(run_id)

    def score_feedback(self, *, trace_id: str, score_id: str, up: bool, comment: str | None) -> None:
        """A user's rating of a turn, as the `user_feedback` score of its trace (1 up, 0 down).

        Queued for the SDK's background sender, which batches scores: nothing waits on Langfuse. The
        same `score_id` again replaces the score, so a changed rating is not counted twice.
        """
        try:
            self.client.create_score(
                trace_id=trace_id,
                score_id=score_id,
                name=FEEDBACK_SCORE,
                value=1.0 if up else 0.0,
                data_type="NUMERIC",
                comment=comment,
            )
        except Exception:  # boundary: a score that cannot be queued must not fail the user's request
            log.exception("tracing.score_failed")

    def flush(self) -> bool:
        """Export what has ended so far, within the timeout (blocking: call it from a thread)."""
        return bool(self.provider.force_flush(timeout_millis=int(self.timeout * 1000)))

    async def close(self) -> None:
        """Flush and stop, waiting at most about twice the export timeout whatever the host does."""

        def shut() -> None:
            self.flush()
            # The provider first: the client's own shutdown would flush again, with a 30 s deadline.
            self.provider.shutdown()
            self.client.shutdown()

        # A daemon thread rather than the loop's executor: asyncio.run() waits for executor threads at
        # exit, which a hung export would stretch; this one is simply left behind.
        thread = threading.Thread(target=shut, name="langfuse-shutdown", daemon=True)
        thread.start()
        await asyncio.to_thread(thread.join, 2 * self.timeout + 1)
        if thread.is_alive():
            log.warning("tracing.flush_timed_out", timeout_s=self.timeout)


def tracing_configured(settings: Settings) -> bool:
    return bool(
        settings.langfuse_tracing_enabled
        and settings.langfuse_public_key
        and settings.langfuse_secret_key
        and settings.langfuse_public_key.get_secret_value()
        and settings.langfuse_secret_key.get_secret_value()
    )


def open_tracing(settings: Settings) -> Tracing | None:
    if not tracing_configured(settings):
        return None
    assert settings.langfuse_public_key is not None and settings.langfuse_secret_key is not None
    from langfuse import Langfuse
    from opentelemetry.sdk.trace import TracerProvider

    from app.observability.trace_handler import TurnTracingHandler

    public_key = settings.langfuse_public_key.get_secret_value()
    # A provider of our own, never the global one: other OpenTelemetry users in the process keep theirs,
    # and their spans do not end up in Langfuse.
    provider = TracerProvider()
    client = Langfuse(
        public_key=public_key,
        secret_key=settings.langfuse_secret_key.get_secret_value(),
        base_url=settings.langfuse_host,
        environment=settings.app_env.value,
        release=settings.release,
        sample_rate=settings.langfuse_sample_rate,
        timeout=settings.langfuse_timeout,
        flush_interval=settings.langfuse_flush_interval,
        tracer_provider=provider,
    )
    # The handler finds the client by its public key (the SDK keeps one per key and process).
    handler = TurnTracingHandler(public_key=public_key)
    log.info("tracing.enabled", host=settings.langfuse_host, sample_rate=settings.langfuse_sample_rate)
    return Tracing(
        client=client,
        handler=handler,
        provider=provider,
        tags=[f"env:{settings.app_env.value}", f"release:{settings.release}"],
        timeout=float(settings.langfuse_timeout),
    )
