"""Turning failures inside a turn into typed errors a client can act on."""

import openai
import structlog
from langgraph.errors import GraphRecursionError

from app.db.outage import is_outage
from app.errors import AgentError, AppError, DatabaseUnavailableError, LLMTimeoutError, LLMUnavailableError

log = structlog.get_logger(__name__)


def to_app_error(exc: Exception) -> AppError:
    if is_outage(exc):  # the checkpointer or a tool lost the database: not the agent's fault
        log.warning("chat.database_unavailable", error_type=type(exc).__name__)
        return DatabaseUnavailableError()
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return LLMTimeoutError("The language model did not answer in time; please try again.")
    if isinstance(exc, openai.RateLimitError):
        return LLMUnavailableError(
            "The language model is rate limited; please try again shortly.", headers={"Retry-After": "5"}
        )
    if isinstance(exc, openai.APIConnectionError | openai.InternalServerError):
        return LLMUnavailableError("The language model is unavailable; please try again.")
    if isinstance(exc, GraphRecursionError):
        return AgentError("The agent used too many tool steps without answering.")
    if isinstance(exc, openai.APIStatusError):
        log.warning("chat.llm_rejected", status=exc.status_code, error_type=type(exc).__name__)
        return AgentError(f"The language model rejected the request (HTTP {exc.status_code}).")
    log.exception("chat.turn_failed", error_type=type(exc).__name__)
    return AgentError("The agent failed to answer; please try again.")
