"""The agent's tools. All work offline; none takes identity from model arguments."""

from langchain_core.tools import BaseTool

from app.agent.tools.calculator import calculator
from app.agent.tools.clock import current_datetime
from app.agent.tools.sessions import list_my_sessions


def default_tools() -> list[BaseTool]:
    return [current_datetime, calculator, list_my_sessions]
