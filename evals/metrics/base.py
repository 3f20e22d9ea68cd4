"""What every metric declares: its name, its direction and unit, and the score it gives a turn."""

from dataclasses import dataclass
from typing import Any, Literal

Unit = Literal["score", "ms", "tokens"]  # "score" is 0..1
Kind = Literal["deterministic", "judge"]


@dataclass(frozen=True)
class Score:
    value: float | None  # None: could not be measured (the judge failed); counts as not passed
    passed: bool
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "passed": self.passed, "reason": self.reason}


@dataclass(frozen=True)
class Budgets:
    """Per-turn limits for the cost metrics, unless a turn of the dataset sets its own."""

    max_latency_ms: float = 30_000.0
    max_tokens: int = 8_000


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    higher_is_better: bool
    unit: Unit
    description: str

    def info(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "higher_is_better": self.higher_is_better,
            "unit": self.unit,
            "description": self.description,
        }
