"""Scores every turn with every selected metric; judge calls run concurrently within the judge's bound."""

import asyncio
from collections.abc import Callable, Sequence

from evals.judge import Judge
from evals.metrics import DeterministicMetric, JudgeMetric, Metric, Score
from evals.records import TurnRecord
from evals.thresholds import Thresholds

Scores = dict[str, dict[str, Score]]  # turn key -> metric name -> score


def judge_jobs(
    records: Sequence[TurnRecord], metrics: Sequence[Metric]
) -> list[tuple[TurnRecord, JudgeMetric]]:
    # A turn that failed has nothing to judge; the `completed` metric counts it.
    return [(r, m) for r in records if r.error is None for m in metrics if isinstance(m, JudgeMetric)]


async def score_all(
    records: Sequence[TurnRecord],
    metrics: Sequence[Metric],
    thresholds: Thresholds,
    *,
    judge: Judge | None,
    on_judged: Callable[[], None] = lambda: None,
) -> Scores:
    budgets = thresholds.budget_limits()
    scores: Scores = {r.key: {} for r in records}
    for record in records:
        for metric in metrics:
            if isinstance(metric, DeterministicMetric) and metric.applies(record):
                scores[record.key][metric.name] = metric.check(record, budgets)
    jobs = judge_jobs(records, metrics)
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
