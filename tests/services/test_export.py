"""The export streams: rows are read only as the archive is consumed, memory stays flat, the loop runs."""

import asyncio
import io
import json
import time
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from app.models import User
from app.repositories import messages as messages_repo
from app.services import export as export_service
from app.services.zipstream import Entry
from tests.api.test_export import add_messages
from tests.conftest import new_session, register
from tests.reporting import report

MESSAGES = 4000


async def _user(app, client, messages: int = MESSAGES) -> tuple[User, str]:
    headers = await register(client)
    sid = await new_session(client, headers)
    await add_messages(app, sid, messages)
    async with app.state.runtime.db.sessions() as db:
        user = (await db.execute(select(User).where(User.email == headers["email"]))).scalar_one()
    return user, sid


@pytest.fixture
def pages_read(monkeypatch) -> list[int]:
    """Counts the message pages the export reads."""
    read: list[int] = []
    real = messages_repo.page_after

    async def counted(*args, **kwargs):
        page = await real(*args, **kwargs)
        read.append(len(page))
        return page

    monkeypatch.setattr(messages_repo, "page_after", counted)
    return read


async def test_rows_are_read_only_as_the_archive_is_consumed(app, client, pages_read):
    user, _ = await _user(app, client)
    chunks = export_service.export_zip(app.state.runtime, user, when=datetime.now(UTC))
    first = await anext(chunks)
    assert first.startswith(b"PK\x03\x04")
    assert pages_read == []  # the archive has started, no message is read yet
    received = len(first)
    while sum(pages_read) < export_service.MESSAGES_PAGE:
        received += len(await anext(chunks))
    # Stopped here: the client got the start of the session's file while most of it is unread.
    assert sum(pages_read) < MESSAGES // 2
    await chunks.aclose()


async def _measured_export(app, user: User, out: Path) -> tuple[int, float]:
    """Export into `out`; the peak of Python's memory meanwhile, and the longest event-loop stall."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        # How late a 10 ms sleep wakes up: the longest stretch the export kept the loop to itself.
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            gaps.append(time.perf_counter() - started - 0.01)

    tick = asyncio.create_task(ticker())
    tracemalloc.start()
    try:
        with out.open("wb") as f:
            async for chunk in export_service.export_zip(app.state.runtime, user, when=datetime.now(UTC)):
                f.write(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        stop.set()
        await tick
    return peak, max(gaps)


async def test_memory_stays_flat_and_the_loop_keeps_running(app, client, tmp_path, pages_read):
    small, _ = await _user(app, client, messages=200)
    big, sid = await _user(app, client)
    await _measured_export(app, small, tmp_path / "warm-up.zip")  # first-use caches are not the export's
    small_peak, _ = await _measured_export(app, small, tmp_path / "small.zip")
    pages_read.clear()
    big_peak, stall = await _measured_export(app, big, tmp_path / "big.zip")

    with zipfile.ZipFile(tmp_path / "big.zip") as archive:
        assert archive.testzip() is None
        exported = json.loads(archive.read(f"sessions/{sid}.json"))
        unpacked = sum(i.file_size for i in archive.infolist())
    assert len(exported["messages"]) == MESSAGES
    assert sum(pages_read) == 2 * MESSAGES  # once for the JSON file, once for the Markdown one
    assert max(pages_read) <= export_service.MESSAGES_PAGE
    size = (tmp_path / "big.zip").stat().st_size
    report("export of 4000 messages", f"{unpacked / 1e6:.1f} MB unpacked, {size / 1e6:.1f} MB zip")
    report("export peak Python memory", f"{big_peak / 1e6:.2f} MB; 200 messages: {small_peak / 1e6:.2f} MB")
    report("export longest event-loop stall", f"{stall * 1000:.0f} ms")
    # Twenty times the messages add a fraction of their size (measured: about 0.35 MB for 4 MB); holding
    # the rows or the archive whole would add more than all of it.
    assert big_peak - small_peak < unpacked / 4, (small_peak, big_peak, unpacked)
    assert stall < 1.0  # measured 30-70 ms on an idle machine, 320 ms with the 2 cores loaded 3.5x


async def test_a_new_part_is_one_function_and_one_line(app, client, monkeypatch):
    """How another file joins the export (as feedback.json did): a part yielding its entries, listed
    in PARTS."""
    user, _ = await _user(app, client, messages=2)

    async def ratings_part(export: export_service.Export) -> AsyncIterator[Entry]:
        yield Entry("ratings.json", export_service._json_array(_pages()))

    async def _pages() -> AsyncIterator[list[dict[str, str]]]:
        yield [{"rating": "up"}]

    monkeypatch.setattr(export_service, "PARTS", [*export_service.PARTS, (ratings_part, "ratings.json")])
    chunks = [c async for c in export_service.export_zip(app.state.runtime, user, when=datetime.now(UTC))]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert json.loads(archive.read("ratings.json")) == [{"rating": "up"}]
    assert "ratings.json" in archive.read("README.txt").decode()
