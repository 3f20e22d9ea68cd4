"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from app.models.audit import AuditAction, AuditLog
from app.models.chat import ChatSession, Message, Thread
from app.models.memory import MemoryHistory, MemoryMessage
from app.models.user import Role, User

__all__ = [
    "AuditAction",
    "AuditLog",
    "ChatSession",
    "MemoryHistory",
    "MemoryMessage",
    "Message",
    "Role",
    "Thread",
    "User",
]
