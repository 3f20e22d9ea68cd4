"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from app.models.chat import ChatSession, Message, Thread
from app.models.memory import MemoryHistory, MemoryMessage
from app.models.user import User

__all__ = ["ChatSession", "MemoryHistory", "MemoryMessage", "Message", "Thread", "User"]
