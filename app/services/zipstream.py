"""A zip archive produced as it is read: entries are compressed chunk by chunk and their bytes handed
out at once, so neither an entry nor the archive is ever held whole.

The stdlib writes to a stream it cannot seek in by putting each entry's sizes in a data descriptor
after its data; every unzip tool reads that. Compression runs in a worker thread, one chunk at a
time, so that a large entry never stalls the event loop.
"""

import zipfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

import anyio


class _Sink:
    """What zipfile writes into: written bytes wait here until taken. No seek(): zipfile then writes
    data descriptors instead of going back to patch headers."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes, /) -> int:
        self._chunks.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


@dataclass(frozen=True)
class Entry:
    """One file of the archive: its path, and its content as it is read."""

    name: str
    chunks: AsyncIterable[bytes]


async def zip_stream(entries: AsyncIterable[Entry], *, when: datetime) -> AsyncIterator[bytes]:
    """The archive of `entries`, in pieces as compression produces them; every entry dated `when`."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    stamp = when.timetuple()[:6]
    async for entry in entries:
        info = zipfile.ZipInfo(entry.name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        handle: IO[bytes] = archive.open(info, "w")
        async for chunk in entry.chunks:
            await anyio.to_thread.run_sync(handle.write, chunk)
            if out := sink.take():
                yield out
        await anyio.to_thread.run_sync(handle.close)
        if out := sink.take():
            yield out
    archive.close()
    yield sink.take()
