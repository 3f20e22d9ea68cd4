"""Gates per metric and against a baseline, read from a TOML file (evals/thresholds.toml by default)."""

import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals.errors import EvalInputError, explain
from evals.metrics import Budgets, JudgeMetric, Metric

DEFAULT_PATH = Path(__file__).resolve().parent / "thresholds.toml"


class _Strict(BaseModel):
    # strict: TOML has types of its own, and `true` or "0.5" is no number here.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class MetricGate(_Strict):
    min_mean: float | None = None
    max_mean: float | None = None
    min_pass_rate: float | None = Field(default=None, ge=0, le=1)
    pass_score: float | None = Field(default=None, ge=0, le=1)  # judge metrics: a turn's pass mark

    def limits(self) -> dict[str, float]:
        """What the gate holds the metric's summary to (pass_score only marks single turns)."""
        found = {"min_mean": self.min_mean, "max_mean": self.max_mean, "min_pass_rate": self.min_pass_rate}
        return {k: v for k, v in found.items() if v is not None}


class BaselineGate(_Strict):
    max_worse_cases: int | None = Field(default=0, ge=0)
    # The most a 0..1 metric's mean may move the wrong way against the baseline.
    max_mean_drop: float | None = Field(default=0.05, ge=0)


class BudgetsConfig(_Strict):
    max_latency_ms: float = Field(default=Budgets.max_latency_ms, gt=0)
    max_tokens: int = Field(default=Budgets.max_tokens, gt=0)


class Thresholds(_Strict):
    budgets: BudgetsConfig = BudgetsConfig()
    metrics: dict[str, MetricGate] = {}
    baseline: BaselineGate = BaselineGate()

    def budget_limits(self) -> Budgets:
        return Budgets(max_latency_ms=self.budgets.max_latency_ms, max_tokens=self.budgets.max_tokens)

    def pass_score(self, name: str) -> float | None:
        gate = self.metrics.get(name)
        return gate.pass_score if gate else None


def load(path: Path, known: Mapping[str, Metric]) -> Thresholds:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalInputError(f"thresholds file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EvalInputError(f"{path}: not a readable TOML file ({exc})") from None
    # Types first: `metrics = 1` is a message, not a TypeError further down.
    try:
        thresholds = Thresholds.model_validate(raw)
    except ValidationError as exc:
        raise EvalInputError(f"{path}: {explain(exc)}") from None
    unknown = sorted(set(thresholds.metrics) - set(known))
    if unknown:
        raise EvalInputError(f"{path}: unknown metric(s) {unknown}; known: {sorted(known)}")
    for name, gate in thresholds.metrics.items():
        if gate.pass_score is not None and not isinstance(known[name], JudgeMetric):
            raise EvalInputError(f"{path}: pass_score applies to judge metrics only, not {name!r}")
    return thresholds
