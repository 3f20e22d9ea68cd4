"""The LLM judge: any OpenAI-compatible chat model, retried, bounded, and cached by input hash.

A verdict is cached on disk under the hash of everything that decides it (model, temperature,
messages), so re-scoring the same transcript with the same prompt never calls the model again.
"""

import asyncio
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from evals.settings import EvalSettings

SYSTEM = "You are a careful, strict evaluator of an AI assistant's answers. Reply with one JSON object only."
_RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class JudgeError(Exception):
    pass


class _Retryable(Exception):
    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class Verdict:
    score: float
    reason: str


@dataclass
class JudgeStats:
    requests: int = 0  # HTTP calls to the model, retries included
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    peak_concurrency: int = 0


def parse_verdict(text: str) -> Verdict:
    """`{"score": 0..1, "reason": "..."}`, also when the model wraps it in prose or a code fence."""
    match = _OBJECT.search(text)
    try:
        data = json.loads(match.group(0) if match else text)
    except json.JSONDecodeError:
        raise ValueError(f"not JSON: {text[:200]!r}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    score, reason = data.get("score"), data.get("reason", "")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise ValueError(f"score must be a number from 0 to 1, got {score!r}")
    return Verdict(float(score), str(reason).strip())


class Judge:
    def __init__(self, settings: EvalSettings, client: httpx.AsyncClient | None = None) -> None:
        if not settings.judge_configured:
            raise ValueError("the judge needs EVAL_JUDGE_BASE_URL and EVAL_JUDGE_MODEL")
        assert settings.judge_base_url is not None and settings.judge_model is not None
        self.model = settings.judge_model
        self._url = settings.judge_base_url.rstrip("/") + "/chat/completions"
        self._settings = settings
        headers = {}
        if settings.judge_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.judge_api_key.get_secret_value()}"
        self._client = client or httpx.AsyncClient(timeout=settings.judge_timeout, headers=headers)
        self._owns_client = client is None
        self._bound = asyncio.Semaphore(settings.judge_concurrency)
        self._in_flight: dict[str, asyncio.Task[Verdict]] = {}
        self._active = 0
        self.stats = JudgeStats()

    async def aclose(self) -> None:
        for task in list(self._in_flight.values()):
            task.cancel()
        if self._owns_client:
            await self._client.aclose()

    def _request(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": self._settings.judge_temperature,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
        }
        if self._settings.judge_json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def _cache_path(self, body: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return self._settings.cache_dir / digest[:2] / f"{digest}.json"

    async def verdict(self, prompt: str) -> Verdict:
        body = self._request(prompt)
        path = self._cache_path(body)
        key = path.name
        # The same input asked twice at once is asked of the model once.
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._cached_or_asked(path, body))
            self._in_flight[key] = task
            task.add_done_callback(lambda _: self._in_flight.pop(key, None))
        else:
            self.stats.cache_hits += 1
        return await asyncio.shield(task)

    async def _cached_or_asked(self, path: Path, body: dict[str, Any]) -> Verdict:
        cached = await asyncio.to_thread(_read, path)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        async with self._bound:
            self._active += 1
            self.stats.peak_concurrency = max(self.stats.peak_concurrency, self._active)
            try:
                verdict = await self._ask(body)
            finally:
                self._active -= 1
        await asyncio.to_thread(_write, path, verdict)
        return verdict

    async def _ask(self, body: dict[str, Any]) -> Verdict:
        attempts = self._settings.judge_max_retries + 1
        for attempt in range(attempts):
            try:
                return parse_verdict(await self._complete(body))
            except (_Retryable, ValueError) as exc:
                if attempt + 1 == attempts:
                    self.stats.failures += 1
                    raise JudgeError(f"judge failed after {attempts} attempts: {exc}") from None
                self.stats.retries += 1
                wait = exc.wait if isinstance(exc, _Retryable) else None
                delay = self._settings.judge_retry_delay * 2**attempt
                await asyncio.sleep(min(wait, 60.0) if wait is not None else delay)
        raise AssertionError("unreachable")

    async def _complete(self, body: dict[str, Any]) -> str:
        self.stats.requests += 1
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code in _RETRY_STATUSES:
            raise _Retryable(f"HTTP {response.status_code}", _seconds(response.headers.get("Retry-After")))
        if response.status_code != 200:
            self.stats.failures += 1
            raise JudgeError(
                f"judge model refused the request: HTTP {response.status_code} {response.text[:200]}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retryable("malformed completion") from None
        return str(content or "")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _read(path: Path) -> Verdict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Verdict(float(data["score"]), str(data["reason"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, verdict: Verdict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"score": verdict.score, "reason": verdict.reason}), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a concurrent run reads the old file or the whole new one
