"""Every metric the evals know, by name."""

from evals.metrics.base import Budgets, Metric, Score
from evals.metrics.deterministic import METRICS as DETERMINISTIC
from evals.metrics.deterministic import DeterministicMetric
from evals.metrics.judged import METRICS as JUDGED
from evals.metrics.judged import JudgeMetric

ALL: dict[str, Metric] = {m.name: m for m in [*DETERMINISTIC, *JUDGED]}

__all__ = [
    "ALL",
    "DETERMINISTIC",
    "JUDGED",
    "Budgets",
    "DeterministicMetric",
    "JudgeMetric",
    "Metric",
    "Score",
]
