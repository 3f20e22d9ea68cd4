"""The agent's tools. All work offline; none takes identity from model arguments."""

import structlog
from langchain_core.tools import BaseTool
from langgraph.prebuilt.tool_node import ToolInvocationError

from app.agent.tools.calculator import calculator
from app.agent.tools.clock import current_datetime
from app.agent.tools.sessions import list_my_sessions

log = structlog.get_logger(__name__)


def default_tools() -> list[BaseTool]:
    return [current_datetime, calculator, list_my_sessions]


def tool_error_message(exc: Exception) -> str:
    """What the model (and the transcript) sees when a tool raises.

    Bad arguments are the model's to fix, so it gets the validation message. Anything else may
    carry internals (SQL, paths): it is logged and the model gets a generic line.
    """
    if isinstance(exc, ToolInvocationError):
        return f"Error: invalid arguments: {exc}. Fix them and try again."
    log.warning("tool.failed", error_type=type(exc).__name__, exc_info=exc)
    return "Error: the tool failed. Answer without it, or try again later."
