"""The judge client: retried, bounded, cached by input hash, and tolerant of how models wrap JSON."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from evals import backoff
from evals.judge import Judge, JudgeError, parse_verdict
from evals.metrics import JUDGED
from evals.records import TurnRecord
from evals.settings import EvalSettings
from tests.evals.conftest import verdict
from tests.evals.judge_fake import CountingJudge
from tests.fake_llm import FakeLLM, Fault


def judge(fake: FakeLLM, cache: Path, **overrides: object) -> Judge:
    values: dict[str, object] = {
        "judge_base_url": fake.base_url,  # type: ignore[attr-defined]
        "judge_model": "fake-judge",
        "judge_retry_delay": 0.01,
        "cache_dir": cache,
        **overrides,
    }
    return Judge(EvalSettings(**values))  # type: ignore[arg-type]


def asked(fake: FakeLLM) -> int:
    return sum(1 for r in fake.chat_requests if r.get("model") == "fake-judge")


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"score": 0.25, "reason": "meh"}', 0.25),
        ('Here you go:\n```json\n{"score": 1, "reason": "fine"}\n```', 1.0),
        ('{"reason": "no", "score": 0}', 0.0),
        # What follows the object, braces included, is not part of it.
        ('{"score": 0.5, "reason": "ok"} and {"note": "a second object"}', 0.5),
        ('Scores look like {score}. Mine: {"score": 0.75, "reason": "b {c} d"} -- done }', 0.75),
    ],
)
def test_verdicts_are_read_out_of_what_models_write(text, score):
    assert parse_verdict(text).score == score


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("no json here", "not JSON"),
        ('{"score": 7, "reason": "x"}', "from 0 to 1"),
        ('{"score": "high"}', "from 0 to 1"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_bad_verdicts_are_refused(text, why):
    with pytest.raises(ValueError, match=why):
        parse_verdict(text)


async def test_failures_are_retried_then_reported(fake_llm, tmp_path):
    fake_llm.script_reply(verdict(0.6, "fine"), when="judge me")
    j = judge(fake_llm, tmp_path)
    fake_llm.script(Fault(status=503), Fault(reply="I think it is good"))
    assert (await j.verdict("judge me 1")).score == 0.6
    assert (j.stats.requests, j.stats.retries, j.stats.failures) == (3, 2, 0)

    fake_llm.script(*[Fault(status=500)] * 4)
    with pytest.raises(JudgeError, match="after 4 attempts"):
        await j.verdict("judge me 2")
    fake_llm.script(Fault(status=400))
    with pytest.raises(JudgeError, match="HTTP 400"):
        await j.verdict("judge me 3")  # a request the model refuses is not retried
    assert j.stats.failures == 2 and j.stats.requests == 3 + 4 + 1
    await j.aclose()


async def test_a_failed_judge_call_is_a_failed_score_not_a_crash(fake_llm, tmp_path):
    j = judge(fake_llm, tmp_path, judge_max_retries=0)
    fake_llm.script(Fault(status=502))
    score = await JUDGED[0].score(TurnRecord("c", 0, "tools", "main", "q", "a"), j)
    assert score.value is None and not score.passed and "HTTP 502" in score.reason
    await j.aclose()


async def test_the_same_input_is_asked_once_even_across_runs(fake_llm, tmp_path):
    fake_llm.script_reply(verdict(0.9, "good"), when="judge me")
    first = judge(fake_llm, tmp_path)
    results = await asyncio.gather(*[first.verdict("judge me: same") for _ in range(5)])
    assert {r.score for r in results} == {0.9} and asked(fake_llm) == 1
    await first.aclose()

    again = judge(fake_llm, tmp_path)
    assert (await again.verdict("judge me: same")).reason == "good"
    assert asked(fake_llm) == 1 and again.stats.cache_hits == 1
    await again.verdict("judge me: different")
    assert asked(fake_llm) == 2
    other_model = judge(fake_llm, tmp_path, judge_model="fake-judge-2")
    await other_model.verdict("judge me: same")  # the model is part of the key
    assert other_model.stats.requests == 1
    await again.aclose()
    await other_model.aclose()


async def test_concurrency_is_bounded_as_the_server_sees_it(tmp_path):
    with CountingJudge(pause=0.1) as server:
        j = Judge(
            EvalSettings(
                judge_base_url=server.base_url, judge_model="counted", cache_dir=tmp_path, judge_concurrency=2
            )
        )
        await asyncio.gather(*[j.verdict(f"judge me {i}") for i in range(6)])
        await j.aclose()
    assert server.served == 6 and server.peak == 2


async def test_only_timeouts_rate_limits_and_server_errors_are_retried(fake_llm, tmp_path):
    fake_llm.script_reply(verdict(0.6, "fine"), when="judge me")
    j = judge(fake_llm, tmp_path)
    for status in (408, 429, 502):
        fake_llm.script(Fault(status=status))
        assert (await j.verdict(f"judge me after {status}")).score == 0.6
    assert j.stats.retries == 3
    for status in (401, 404, 409, 422):
        fake_llm.script(Fault(status=status))
        with pytest.raises(JudgeError, match=f"HTTP {status}"):
            await j.verdict(f"judge me after {status}")
    assert j.stats.retries == 3 and j.stats.requests == 6 + 4
    await j.aclose()


async def test_retry_after_is_honoured(fake_llm, tmp_path):
    fake_llm.script_reply(verdict(0.6, "fine"), when="judge me")
    j = judge(fake_llm, tmp_path, judge_retry_delay=30.0)  # jittered doubling would wait 15 s or more
    fake_llm.script(Fault(status=429, retry_after="0"))
    start = time.monotonic()
    assert (await j.verdict("judge me")).score == 0.6
    assert time.monotonic() - start < 5
    await j.aclose()


async def test_a_url_httpx_cannot_speak_to_is_not_retried(tmp_path):
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'htp://'.")

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    settings = EvalSettings(judge_base_url="http://judge.invalid/v1", judge_model="m", cache_dir=tmp_path)
    j = Judge(settings, client=client)
    with pytest.raises(JudgeError, match="unsupported protocol"):
        await j.verdict("anything")
    assert calls == 1 and j.stats.retries == 0
    await client.aclose()


def test_backoff_doubles_with_jitter_and_defers_to_the_server():
    waits = [backoff.delay(1.0, 2) for _ in range(50)]
    assert all(2.0 <= w <= 6.0 for w in waits) and len(set(waits)) > 40
    assert backoff.delay(1.0, 2, server_says=7.0) == 7.0
    assert backoff.delay(1.0, 0, server_says=3600.0) == backoff.MAX_WAIT
    assert backoff.retry_after("12") == 12.0 and backoff.retry_after("soon") is None
    assert backoff.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past


async def test_the_judge_endpoint_is_part_of_the_cache_key(fake_llm, tmp_path):
    fake_llm.script_reply(verdict(0.9, "good"), when="judge me")
    first = judge(fake_llm, tmp_path)
    await first.verdict("judge me: same")
    # The same port under another name: to the cache, another server.
    other = judge(fake_llm, tmp_path, judge_base_url=fake_llm.base_url.replace("127.0.0.1", "localhost"))
    await other.verdict("judge me: same")
    assert (first.stats.requests, other.stats.requests, other.stats.cache_hits) == (1, 1, 0)
    await first.aclose()
    await other.aclose()


async def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_run(fake_llm, tmp_path):
    fake_llm.script_reply(verdict(0.4, "fine"), when="judge me")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    j = judge(fake_llm, blocker / "cache")
    with capture_logs() as logs:
        results = await asyncio.gather(*[j.verdict(f"judge me {i}") for i in range(3)])
        await j.verdict("judge me 3")
    assert [r.score for r in results] == [0.4] * 3
    assert j.stats.requests == 4 and j.stats.cache_error is not None
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["evals.judge_cache_unwritable"]
    await j.aclose()


async def test_json_mode_asks_for_a_json_object(fake_llm, tmp_path):
    j = judge(fake_llm, tmp_path, judge_json_mode=True, judge_api_key="sk-judge")
    # The fake takes every json_object request for mem0's extraction: script it on that queue.
    fake_llm.script_extraction(Fault(reply=verdict(0.3, "scripted")))
    assert (await j.verdict("anything")).score == 0.3
    sent = [r for r in fake_llm.requests if r.get("model") == "fake-judge"][-1]
    assert sent["response_format"] == {"type": "json_object"} and sent["temperature"] == 0.0
    await j.aclose()
