"""Scores every turn with every selected metric; judge calls run concurrently within the judge's bound."""

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence

from evals.judge import Judge
from evals.metrics import DeterministicMetric, JudgeMetric, Metric, Score
from evals.records import TurnRecord
from evals.thresholds import Thresholds

Scores = dict[str, dict[str, Score]]  # turn key -> metric name -> score
Skip = Mapping[str, Collection[str]]  # turn key -> metric names not to score again


def applicable(record: TurnRecord, metrics: Sequence[Metric]) -> list[Metric]:
    """The metrics that score this turn. A failed turn has nothing to judge (its deterministic
    checks fail instead, `completed` among them)."""
    return [
        m
        for m in metrics
        if (m.applies(record) if isinstance(m, DeterministicMetric) else record.error is None)
    ]


def judge_jobs(
    records: Sequence[TurnRecord], metrics: Sequence[Metric], skip: Skip | None = None
) -> list[tuple[TurnRecord, JudgeMetric]]:
    return [
        (r, m)
        for r in records
        for m in applicable(r, metrics)
        if isinstance(m, JudgeMetric) and m.name not in (skip or {}).get(r.key, ())
    ]


async def score_all(
    records: Sequence[TurnRecord],
    metrics: Sequence[Metric],
    thresholds: Thresholds,
    *,
    judge: Judge | None,
    on_judged: Callable[[], None] = lambda: None,
    skip: Skip | None = None,
) -> Scores:
    budgets = thresholds.budget_limits()
    scores: Scores = {r.key: {} for r in records}
    for record in records:
        done = (skip or {}).get(record.key, ())
        for metric in applicable(record, metrics):
            if isinstance(metric, DeterministicMetric) and metric.name not in done:
                scores[record.key][metric.name] = metric.measure(record, budgets)
    jobs = judge_jobs(records, metrics, skip)
    if jobs and judge is None:
        raise ValueError("judge metrics selected without a judge")

    async def judged(record: TurnRecord, metric: JudgeMetric) -> None:
        assert judge is not None
        scores[record.key][metric.name] = await metric.score(
            record, judge, thresholds.pass_score(metric.name)
        )
        on_judged()

    await asyncio.gather(*(judged(r, m) for r, m in jobs))
    order = [m.name for m in metrics]
    return {key: {n: by_name[n] for n in order if n in by_name} for key, by_name in scores.items()}
