"""A live progress bar on stderr (redrawn in place on a terminal, a few plain lines otherwise)."""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    WIDTH = 30

    def __init__(
        self, label: str, total: int, *, stream: TextIO | None = None, live: bool | None = None
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._start = time.monotonic()
        self._drawn_at = 0.0
        self._closed = False
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw(force=self.done >= self.total)

    def line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = int(self.WIDTH * share)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        elapsed = time.monotonic() - self._start
        return f"{self.label:<8} [{bar}] {self.done}/{self.total} {share:4.0%} {elapsed:5.1f}s"

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or (not force and now - self._drawn_at < 0.1):
            return
        self._drawn_at = now
        self.stream.write("\r" + self.line())
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.live:
            self.stream.write("\r" + self.line() + "\n")
        else:
            self.stream.write(self.line() + "\n")  # one summary line for logs and CI
        self.stream.flush()


@contextmanager
def progress(label: str, total: int, *, live: bool | None) -> Iterator[Progress]:
    """A bar that is closed (its last line written) however the work inside ends."""
    bar = Progress(label, total, live=live)
    try:
        yield bar
    finally:
        bar.close()
