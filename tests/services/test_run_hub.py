"""The run hub: open streams cost one statement a tick per process, whatever their number; runs of the
process wake their streams at once; nothing is polled while nothing is followed."""

import asyncio
import json
import time
import uuid

import psycopg
from sqlalchemy import text

from app.repositories import runs as runs_repo
from app.services.chat import run_hub
from tests.conftest import asgi_client, auth, make_settings, new_session, register, running_app


class Counted:
    """A repository function that records each call's arguments, and can fail the first few."""

    def __init__(self, fn, fail: int = 0) -> None:
        self.fn, self.fail, self.calls = fn, fail, []

    async def __call__(self, conn, *args, **kwargs):
        self.calls.append((args, kwargs))
        if len(self.calls) <= self.fail:
            raise psycopg.OperationalError("the database is away")
        return await self.fn(conn, *args, **kwargs)


async def until(condition, within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within the time allowed")


async def remote_run(app, client, user, events: int) -> uuid.UUID:
    """A run as another process writes it: rows only, nothing of it in this process."""
    sid = await new_session(client, user)
    me = (await client.get("/api/v1/auth/me", headers=auth(user))).json()
    run_id = uuid.uuid4()
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO run (id, session_id, user_id, status, message, created_at, started_at)"
                " VALUES (:id, :s, :u, 'running', 'm', now(), now())"
            ),
            {"id": run_id, "s": sid, "u": me["id"]},
        )
    await write(app, run_id, range(1, events + 1))
    return run_id


async def write(app, run_id: uuid.UUID, seqs: range, *, finish: bool = False) -> None:
    async with app.state.runtime.db.engine.begin() as conn:
        for seq in seqs:
            await conn.execute(
                text("INSERT INTO run_event (run_id, seq, event, data) VALUES (:id, :seq, 'token', :d)"),
                {"id": run_id, "seq": seq, "d": json.dumps({"content": f"t{seq}"})},
            )
        if finish:
            await conn.execute(
                text("UPDATE run SET status = 'success', finished_at = now() WHERE id = :id"), {"id": run_id}
            )


async def collect(rt, run_id: uuid.UUID, after: int) -> list[int]:
    return [event.seq async for event in run_hub.follow(rt, run_id=run_id, after=after)]


async def test_many_streams_cost_one_statement_a_tick_and_resume_exactly(app, client, user, monkeypatch):
    rt = app.state.runtime
    progress = Counted(runs_repo.progress)
    reads = Counted(runs_repo.events_after)
    monkeypatch.setattr(runs_repo, "progress", progress)
    monkeypatch.setattr(runs_repo, "events_after", reads)
    runs = [await remote_run(app, client, user, events=3) for _ in range(2)]
    followers = {(r, k): asyncio.create_task(collect(rt, r, after=k % 4)) for r in runs for k in range(20)}
    # A client resuming from a seq the run never reached waits for it, and holds up no other stream.
    ahead = asyncio.create_task(collect(rt, runs[0], after=50))
    await until(lambda: len(reads.calls) == len(followers) + 1)  # each stream's first read
    assert run_hub.of(rt).followed == 2

    # Nothing moves: the streams sleep, and the hub asks about both runs in one statement a tick.
    progress.calls.clear()
    t0 = time.perf_counter()
    await asyncio.sleep(0.9)
    ticks = (time.perf_counter() - t0) / rt.settings.run_stream_poll_seconds
    assert 1 <= len(progress.calls) <= ticks + 1  # a busy machine may run late, never more often
    assert all(sorted(args[0]) == sorted(runs) for args, _ in progress.calls)
    assert len(reads.calls) == len(followers) + 1

    # Another process writes an event: the poll wakes each stream of that run, which reads once.
    await write(app, runs[0], range(4, 5))
    await until(lambda: len(reads.calls) == len(followers) + 21)
    await asyncio.sleep(0.4)
    assert len(reads.calls) == len(followers) + 21

    # Another process finishes both runs: every stream ends, with no gap and no duplicate.
    await write(app, runs[0], range(5, 6), finish=True)
    await write(app, runs[1], range(4, 6), finish=True)
    async with asyncio.timeout(5):
        got = {key: await task for key, task in followers.items()}
        assert await ahead == []
    assert all(seqs == list(range(k % 4 + 1, 6)) for (_, k), seqs in got.items())
    assert run_hub.of(rt).followed == 0

    # No one follows anything: nothing is polled.
    progress.calls.clear()
    await asyncio.sleep(0.6)
    assert progress.calls == []


async def test_a_run_of_this_process_wakes_its_streams_without_waiting_for_a_poll(pg_url, fake_llm):
    # A poll every 5 s: a stream that waited for one would not see the run end within a second.
    settings = make_settings(pg_url, fake_llm, run_stream_poll_seconds=5)
    async with running_app(settings) as app, asgi_client(app) as client:
        rt = app.state.runtime
        user = await register(client)
        sid = await new_session(client, user)
        fake_llm.token_delay = 0.03
        words = " ".join(f"w{i}" for i in range(10))
        r = await client.post(f"/api/v1/sessions/{sid}/runs", json={"message": words}, headers=auth(user))
        assert r.status_code == 202, r.text
        run_id = uuid.UUID(r.json()["id"])
        t0 = time.perf_counter()
        async with asyncio.timeout(5):
            events = [e async for e in run_hub.follow(rt, run_id=run_id, after=0)]
        elapsed = time.perf_counter() - t0
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].event == "done" and events[-1].data["reply"] == f"Echo: {words}"
    assert elapsed < 3, elapsed


async def test_a_notify_wakes_a_waiting_stream_at_once(app):
    rt = app.state.runtime
    hub, run_id = run_hub.of(rt), uuid.uuid4()
    loop = asyncio.get_running_loop()
    with hub.watch(run_id):
        waiter = asyncio.create_task(hub.wait(run_id, after=0, deadline=loop.time() + 5))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        run_hub.notify(rt, run_id, 1)
        await asyncio.wait_for(waiter, 0.05)
        # What the stream has already read is no news.
        waiter = asyncio.create_task(hub.wait(run_id, after=1, deadline=loop.time() + 0.2))
        run_hub.notify(rt, run_id, 1)
        await asyncio.sleep(0.05)
        assert not waiter.done()
        run_hub.notify(rt, run_id, 1, finished=True)
        await asyncio.wait_for(waiter, 0.05)
    run_hub.notify(rt, run_id, 2)  # no longer followed: nothing kept
    assert hub.known(run_id) == 0


async def test_the_poller_outlives_an_outage(app, client, user, monkeypatch):
    rt, outages = app.state.runtime, 3
    progress = Counted(runs_repo.progress, fail=outages)
    monkeypatch.setattr(runs_repo, "progress", progress)
    run_id = await remote_run(app, client, user, events=1)
    follower = asyncio.create_task(collect(rt, run_id, after=0))
    await until(lambda: len(progress.calls) > outages)
    await write(app, run_id, range(2, 3), finish=True)
    async with asyncio.timeout(5):
        assert await follower == [1, 2]
