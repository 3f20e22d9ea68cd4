"""The judge client: retried, bounded, cached by input hash, and tolerant of how models wrap JSON."""

import asyncio
from pathlib import Path

import pytest

from evals.judge import Judge, JudgeError, parse_verdict
from evals.metrics import JUDGED
from evals.records import TurnRecord
from evals.settings import EvalSettings
from tests.evals.conftest import verdict
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


async def test_concurrency_is_bounded(fake_llm, tmp_path):
    fake_llm.script_reply(verdict(0.5, "ok"), when="judge me")
    fake_llm.latency = 0.05
    j = judge(fake_llm, tmp_path, judge_concurrency=2)
    await asyncio.gather(*[j.verdict(f"judge me {i}") for i in range(6)])
    assert j.stats.peak_concurrency == 2 and j.stats.requests == 6
    await j.aclose()


async def test_json_mode_asks_for_a_json_object(fake_llm, tmp_path):
    j = judge(fake_llm, tmp_path, judge_json_mode=True, judge_api_key="sk-judge")
    # The fake takes every json_object request for mem0's extraction: script it on that queue.
    fake_llm.script_extraction(Fault(reply=verdict(0.3, "scripted")))
    assert (await j.verdict("anything")).score == 0.3
    sent = [r for r in fake_llm.requests if r.get("model") == "fake-judge"][-1]
    assert sent["response_format"] == {"type": "json_object"} and sent["temperature"] == 0.0
    await j.aclose()
