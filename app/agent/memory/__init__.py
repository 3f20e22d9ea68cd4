"""Long-term memory of each user across their sessions: mem0 on pgvector, offline by default."""

from app.agent.memory.store import MemoryStore, open_memory

__all__ = ["MemoryStore", "open_memory"]
