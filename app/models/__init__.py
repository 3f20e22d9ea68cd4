"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from app.models.audit import AuditAction, AuditLog
from app.models.auth import AuthSession, LoginFailure
from app.models.chat import ChatSession, Message, Thread
from app.models.events import ApiEventCount
from app.models.feedback import Feedback, FeedbackTally, Rating
from app.models.limits import DailyUsage, RateLimitCounter
from app.models.memory import MemoryHistory, MemoryJob, MemoryMessage
from app.models.runs import Run, RunEvent
from app.models.user import Role, User

__all__ = [
    "ApiEventCount",
    "AuditAction",
    "AuditLog",
    "AuthSession",
    "ChatSession",
    "DailyUsage",
    "Feedback",
    "FeedbackTally",
    "LoginFailure",
    "MemoryHistory",
    "MemoryJob",
    "MemoryMessage",
    "Message",
    "RateLimitCounter",
    "Rating",
    "Role",
    "Run",
    "RunEvent",
    "Thread",
    "User",
]
