"""The chat model: langchain-openai against any OpenAI-compatible endpoint, with retries and fallbacks."""

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI

from app.config import Settings

# Sent when no key is configured: OpenAI-compatible local servers ignore it, and the client insists on one.
_NO_KEY = "not-needed"


def _chat_model(settings: Settings, model: str) -> ChatOpenAI:
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else _NO_KEY
    kwargs: dict[str, Any] = {}
    if settings.llm_disable_streaming_with_tools:
        kwargs["disable_streaming"] = "tool_calling"
    return ChatOpenAI(
        model=model,
        api_key=key,
        base_url=settings.llm_base_url,
        temperature=settings.llm_temperature,
        max_completion_tokens=settings.llm_max_tokens,
        timeout=settings.llm_request_timeout,
        # The OpenAI client retries connection errors, 408/409/429 and 5xx with exponential backoff.
        max_retries=settings.llm_max_retries,
        stream_usage=True,
        **kwargs,
    )


def build_model(settings: Settings, tools: Sequence[BaseTool]) -> Runnable[LanguageModelInput, BaseMessage]:
    """The primary model with tools bound, falling back in order to each fallback model.

    Every fallback gets the same tools bound, and the chain is built once: a fallback serves one
    call and never changes the model used by other requests.
    """
    primary = _chat_model(settings, settings.llm_model).bind_tools(tools)
    fallbacks = [_chat_model(settings, name).bind_tools(tools) for name in settings.llm_fallback_models]
    if not fallbacks:
        return primary
    return primary.with_fallbacks(fallbacks)
