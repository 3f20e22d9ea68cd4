"""The chat model: langchain-openai against any OpenAI-compatible endpoint, with retries and fallbacks."""

from collections.abc import Sequence
from typing import Any

import openai
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI

from app.agent.local_model import TextToolCallsChatOpenAI
from app.agent.openai_client import DirectCompletions
from app.config import Settings


def _chat_model(settings: Settings, model: str, client: openai.AsyncOpenAI) -> ChatOpenAI:
    kwargs: dict[str, Any] = {}
    if settings.llm_disable_streaming_with_tools:
        kwargs["disable_streaming"] = "tool_calling"
    # Only for a model that writes tool calls as text (the bundled one); real providers get ChatOpenAI.
    chat_model = TextToolCallsChatOpenAI if settings.llm_tool_calls_in_text else ChatOpenAI
    return chat_model(
        model=model,
        api_key=client.api_key,
        base_url=settings.llm_base_url,
        temperature=settings.llm_temperature,
        max_completion_tokens=settings.llm_max_tokens,
        timeout=settings.llm_request_timeout,
        max_retries=settings.llm_max_retries,
        stream_usage=True,
        # The client's read timeout already bounds a stalled stream; LangChain's own bound wraps
        # every chunk in asyncio.wait_for, a new task per token.
        stream_chunk_timeout=None,
        root_async_client=client,
        async_client=DirectCompletions(client, settings.stream_flush_ms / 1000),
        **kwargs,
    )


def build_model(
    settings: Settings, tools: Sequence[BaseTool], client: openai.AsyncOpenAI
) -> Runnable[LanguageModelInput, BaseMessage]:
    """The primary model with tools bound, falling back in order to each fallback model.

    Every fallback gets the same tools bound, and the chain is built once: a fallback serves one
    call and never changes the model used by other requests.
    """
    primary = _chat_model(settings, settings.llm_model, client).bind_tools(tools)
    fallbacks = [
        _chat_model(settings, name, client).bind_tools(tools) for name in settings.llm_fallback_models
    ]
    if not fallbacks:
        return primary
    return primary.with_fallbacks(fallbacks)
