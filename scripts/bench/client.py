"""API calls the benchmark makes: accounts, sessions, and timed chat turns (plain, streamed, and as
background runs followed on their streams).

The same calls reach the floor (scripts/bench/floor.py), which has no accounts: `/chat` and
`/chat/stream` there, a user's session and token here.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from scripts.bench.workload import message

API = "/api/v1"
PASSWORD = "Bench-pass-1!"


@dataclass
class Turn:
    ok: bool
    status: str  # "200", "409", "ReadTimeout", "bad_reply", ...
    ms: float
    ttft_ms: float | None = None


@dataclass
class User:
    index: int  # picks the user's messages (scripts/bench/workload.py)
    headers: dict[str, str]
    refresh_token: str = ""
    session_id: str = ""
    turn: int = 0  # the next message's number

    def next_message(self) -> str:
        self.turn += 1
        return message(self.index, self.turn)


def _expect(r: httpx.Response, status: int, what: str) -> httpx.Response:
    if r.status_code != status:
        raise RuntimeError(f"{what} -> {r.status_code} {r.text[:300]}")
    return r


def _since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


@dataclass
class _Sse:
    first: float | None = None  # when the first `token` event came
    end: str = ""  # the last event, `done` or `error`
    detail: str = ""  # its data
    tokens: list[str] = field(default_factory=list)


async def _read(r: httpx.Response) -> _Sse:
    sse, event = _Sse(), ""
    async for line in r.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
            if event == "token" and sse.first is None:
                sse.first = time.perf_counter()
        elif line.startswith("data:") and event == "token":
            sse.tokens.append(json.loads(line[5:])["content"])
        elif line.startswith("data:") and event in ("done", "error"):
            sse.end, sse.detail = event, line[5:]
    return sse


class Client:
    """Keep-alive httpx clients to one server: one for set-up and readings, and one per user, as people
    have. One client shared by 100 users costs the benchmark a core: httpx's connection pool grows
    slower with every request waiting in it, and the server would look slower than it is.
    Keeps the first few failures as samples."""

    def __init__(
        self, make_http: Callable[[], httpx.AsyncClient], *, floor: bool, reply_words: int | None
    ) -> None:
        self._make_http = make_http
        self.http = make_http()
        self._per_user: dict[int, httpx.AsyncClient] = {}
        self.floor = floor
        self.reply_words = reply_words
        self.error_samples: list[str] = []

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        for http in [self.http, *self._per_user.values()]:
            await http.aclose()

    async def connect(self, users: list[User]) -> None:
        """Each user's client made and connected, before anything is timed."""
        await asyncio.gather(*(self._http(u).get("/health") for u in users))

    def _http(self, user: User) -> httpx.AsyncClient:
        if user.index not in self._per_user:
            self._per_user[user.index] = self._make_http()
        return self._per_user[user.index]

    # --- accounts (the app only; the floor's users are just message sequences)
    async def new_users(self, count: int, start: int = 0) -> list[User]:
        """Registered and logged-in accounts; a few at a time, as bcrypt runs on the server's one core."""
        if self.floor:
            return [User(start + i, {}) for i in range(count)]
        gate = asyncio.Semaphore(4)

        async def one(i: int) -> User:
            async with gate:
                return await self._register(start + i)

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    async def _register(self, index: int) -> User:
        email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        r = await self.http.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD})
        _expect(r, 201, "register")
        r = await self.http.post(f"{API}/auth/login", data={"username": email, "password": PASSWORD})
        user = User(index, {})
        self._take_tokens(user, _expect(r, 200, "login"))
        return user

    @staticmethod
    def _take_tokens(user: User, r: httpx.Response) -> None:
        body = r.json()
        user.headers = {"Authorization": f"Bearer {body['access_token']}"}
        user.refresh_token = body["refresh_token"]

    async def renew(self, users: list[User]) -> None:
        """Fresh access tokens (they last 15 minutes), a new session each, and the conversation from its
        first message again: every configuration gets the same one."""
        for user in users:
            user.turn = 0
        if self.floor:
            return
        gate = asyncio.Semaphore(8)

        async def one(user: User) -> None:
            async with gate:
                r = await self.http.post(f"{API}/auth/refresh", json={"refresh_token": user.refresh_token})
                self._take_tokens(user, _expect(r, 200, "refresh"))
                await self.new_session(user)

        await asyncio.gather(*(one(u) for u in users))

    async def new_session(self, user: User) -> None:
        if not self.floor:
            user.session_id = await self.create_session(user)

    async def create_session(self, user: User) -> str:
        r = await self.http.post(f"{API}/sessions", json={}, headers=user.headers)
        return str(_expect(r, 201, "create session").json()["id"])

    # --- turns
    def _url(self, user: User, stream: bool) -> str:
        path = "/chat/stream" if stream else "/chat"
        return path if self.floor else f"{API}/sessions/{user.session_id}{path}"

    def _fail(self, status: str, t0: float, detail: str) -> Turn:
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{status}: {detail[:300]}")
        return Turn(False, status, _since(t0))

    def _bad_reply(self, reply: object) -> bool:
        """The fake echoes the message: "Echo: ...", of exactly reply_words words when that is set."""
        if not isinstance(reply, str) or not reply.startswith("Echo:"):
            return True
        return self.reply_words is not None and len(reply.split()) != self.reply_words

    async def turn(self, user: User, stream: bool) -> Turn:
        text = user.next_message()
        return await (self.chat_stream(user, text) if stream else self.chat(user, text))

    async def chat(self, user: User, text: str) -> Turn:
        t0 = time.perf_counter()
        try:
            r = await self._http(user).post(
                self._url(user, False), json={"message": text}, headers=user.headers
            )
        except httpx.HTTPError as exc:
            return self._fail(type(exc).__name__, t0, str(exc))
        if r.status_code != 200:
            return self._fail(str(r.status_code), t0, r.text)
        reply = r.json().get("reply")
        if self._bad_reply(reply):
            return self._fail("bad_reply", t0, repr(reply))
        return Turn(True, "200", _since(t0))

    async def chat_stream(self, user: User, text: str) -> Turn:
        """A streamed turn, timed to its first `token` event and to its end."""
        t0 = time.perf_counter()
        url = self._url(user, True)
        try:
            async with self._http(user).stream(
                "POST", url, json={"message": text}, headers=user.headers
            ) as r:
                if r.status_code != 200:
                    return self._fail(str(r.status_code), t0, (await r.aread()).decode(errors="replace"))
                sse = await _read(r)
        except httpx.HTTPError as exc:
            return self._fail(type(exc).__name__, t0, str(exc))
        return self._streamed(sse, t0)

    async def run_turn(self, user: User) -> Turn:
        """A turn as a background run: POST .../runs, then its stream to `done`; timed from the POST to
        the stream's first event (a token) and to its end."""
        t0 = time.perf_counter()
        http = self._http(user)
        runs = f"{API}/sessions/{user.session_id}/runs"
        try:
            r = await http.post(runs, json={"message": user.next_message()}, headers=user.headers)
            if r.status_code != 202:
                return self._fail(str(r.status_code), t0, r.text)
            async with http.stream("GET", f"{runs}/{r.json()['id']}/stream", headers=user.headers) as r:
                if r.status_code != 200:
                    return self._fail(str(r.status_code), t0, (await r.aread()).decode(errors="replace"))
                sse = await _read(r)
        except httpx.HTTPError as exc:
            return self._fail(type(exc).__name__, t0, str(exc))
        return self._streamed(sse, t0)

    def _streamed(self, sse: _Sse, t0: float) -> Turn:
        if sse.end != "done" or sse.first is None:
            return self._fail(f"stream_{sse.end or 'cut'}", t0, sse.detail)
        if self._bad_reply("".join(sse.tokens)):
            return self._fail("bad_reply", t0, repr("".join(sse.tokens)))
        return Turn(True, "200", _since(t0), (sse.first - t0) * 1000)
