"""API calls the benchmark makes: accounts, sessions, and timed chat turns (plain and streamed)."""

import json
import time
import uuid
from dataclasses import dataclass

import httpx

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
    headers: dict[str, str]
    session_id: str


def _expect(r: httpx.Response, status: int, what: str) -> httpx.Response:
    if r.status_code != status:
        raise RuntimeError(f"{what} -> {r.status_code} {r.text[:300]}")
    return r


def _since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


class Client:
    """One keep-alive httpx client to the app; keeps the first few failures as samples."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.error_samples: list[str] = []

    async def new_user(self) -> User:
        """A fresh account with one chat session."""
        email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        r = await self.http.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD})
        _expect(r, 201, "register")
        r = await self.http.post(f"{API}/auth/login", data={"username": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {_expect(r, 200, 'login').json()['access_token']}"}
        r = await self.http.post(f"{API}/sessions", json={}, headers=headers)
        return User(headers, str(_expect(r, 201, "create session").json()["id"]))

    def _fail(self, status: str, t0: float, detail: str) -> Turn:
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{status}: {detail[:300]}")
        return Turn(False, status, _since(t0))

    async def chat(self, user: User, text: str) -> Turn:
        t0 = time.perf_counter()
        url = f"{API}/sessions/{user.session_id}/chat"
        try:
            r = await self.http.post(url, json={"message": text}, headers=user.headers)
        except httpx.HTTPError as exc:
            return self._fail(type(exc).__name__, t0, str(exc))
        if r.status_code != 200:
            return self._fail(str(r.status_code), t0, r.text)
        reply = r.json().get("reply")
        if reply != f"Echo: {text}":
            return self._fail("bad_reply", t0, repr(reply))
        return Turn(True, "200", _since(t0))

    async def chat_stream(self, user: User, text: str) -> Turn:
        """A streamed turn, timed to its first `token` event and to its end."""
        t0 = time.perf_counter()
        url = f"{API}/sessions/{user.session_id}/chat/stream"
        first: float | None = None
        event = end = detail = ""
        tokens: list[str] = []
        try:
            async with self.http.stream("POST", url, json={"message": text}, headers=user.headers) as r:
                if r.status_code != 200:
                    return self._fail(str(r.status_code), t0, (await r.aread()).decode(errors="replace"))
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                        if event == "token" and first is None:
                            first = time.perf_counter()
                    elif line.startswith("data:") and event == "token":
                        tokens.append(json.loads(line[5:])["content"])
                    elif line.startswith("data:") and event in ("done", "error"):
                        end, detail = event, line[5:]
        except httpx.HTTPError as exc:
            return self._fail(type(exc).__name__, t0, str(exc))
        if end != "done" or first is None:
            return self._fail(f"stream_{end or 'cut'}", t0, detail)
        if "".join(tokens) != f"Echo: {text}":
            return self._fail("bad_reply", t0, repr("".join(tokens)))
        return Turn(True, "200", _since(t0), (first - t0) * 1000)
