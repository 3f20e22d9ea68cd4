"""The JSON report: per-metric summaries, per-case results, the baseline comparison and the gate."""

import json
import math
import statistics
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from evals.errors import EvalInputError, explain
from evals.metrics import Metric, Score
from evals.records import TurnRecord
from evals.scoring import Scores
from evals.thresholds import MetricGate, Thresholds

SCHEMA_VERSION = 1
BINS = 10
WORST = 10


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def histogram(values: Sequence[float], unit: str) -> dict[str, list[float] | list[int]]:
    """Ten equal bins: 0..1 for scores, 0..the largest value (rounded up) for ms and tokens."""
    top = 1.0 if unit == "score" else _nice_ceiling(max(values, default=1.0))
    width = top / BINS
    counts = [0] * BINS
    for v in values:
        counts[min(BINS - 1, max(0, int(v / width)))] += 1
    return {"edges": [round(i * width, 6) for i in range(BINS + 1)], "counts": counts}


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return float(next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= value))


def gate_failures(
    name: str, summary: dict[str, Any], gate: MetricGate | None, *, expected: bool = True
) -> list[str]:
    """What the metric's gate finds wrong. A gate over no samples fails too: passing it would say a
    threshold held that nothing measured. `expected` False: this run cannot score the metric by design."""
    if gate is None or not (limits := gate.limits()):
        return []
    if summary["n"] == 0:
        if not expected:
            return []
        shown = ", ".join(f"{k} {v}" for k, v in limits.items())
        return [
            f"{name}: no samples: no turn of this run was scored on it, and its gate ({shown}) does not "
            "pass on nothing; run cases that exercise it, or leave it out of --metrics"
        ]
    mean, rate = summary["mean"], summary["pass_rate"]
    failures = []
    if gate.min_mean is not None and (mean is None or mean < gate.min_mean):
        failures.append(f"{name}: mean {mean} is below min_mean {gate.min_mean}")
    if gate.max_mean is not None and (mean is None or mean > gate.max_mean):
        failures.append(f"{name}: mean {mean} is above max_mean {gate.max_mean}")
    if gate.min_pass_rate is not None and rate < gate.min_pass_rate:
        failures.append(f"{name}: pass rate {rate} is below min_pass_rate {gate.min_pass_rate}")
    return failures


def summarize(
    metric: Metric, scores: list[Score], gate: MetricGate | None, *, expected: bool = True
) -> dict[str, Any]:
    values = [s.value for s in scores if s.value is not None]
    summary: dict[str, Any] = {
        **metric.info(),
        "n": len(scores),
        "errors": len(scores) - len(values),
        "mean": _round(statistics.fmean(values)) if values else None,
        "median": _round(statistics.median(values)) if values else None,
        "min": _round(min(values, default=None)),
        "max": _round(max(values, default=None)),
        "pass_rate": _round(sum(s.passed for s in scores) / len(scores)) if scores else None,
        "histogram": histogram(values, metric.unit),
        "gate": gate.model_dump(exclude_none=True) if gate else {},
    }
    summary["gate_failures"] = gate_failures(metric.name, summary, gate, expected=expected)
    return summary


def groups(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Means of the 0..1 metrics, higher-is-better and lower-is-better apart: never one average of both.
    Latency and tokens have units of their own and are averaged with nothing."""
    out: dict[str, Any] = {}
    for label, direction in (("higher_is_better", True), ("lower_is_better", False)):
        names = [
            n
            for n, m in metrics.items()
            if m["unit"] == "score" and m["higher_is_better"] is direction and m["mean"] is not None
        ]
        mean = statistics.fmean(metrics[n]["mean"] for n in names) if names else None
        out[label] = {"metrics": names, "mean": _round(mean)}
    return out


def cases(records: Sequence[TurnRecord], scores: Scores) -> list[dict[str, Any]]:
    by_case: dict[str, list[TurnRecord]] = {}
    for record in records:
        by_case.setdefault(record.case_id, []).append(record)
    out = []
    for case_id, turns in by_case.items():
        checks = {f"#{r.index} {name}": s.passed for r in turns for name, s in scores[r.key].items()}
        passed = sum(checks.values())
        failed = [
            f"turn {r.index} {name}: {s.reason}"
            for r in turns
            for name, s in scores[r.key].items()
            if not s.passed
        ]
        out.append(
            {
                "id": case_id,
                "category": turns[0].category,
                "passed": passed == len(checks),
                "quality": _round(passed / len(checks) if checks else 1.0),
                "checks": checks,
                "failed": failed,
                "turns": [
                    {**r.as_json(), "scores": {n: s.as_json() for n, s in scores[r.key].items()}}
                    for r in turns
                ],
            }
        )
    return out


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _BaselineCase(_Loose):
    id: str
    quality: float
    checks: dict[str, bool]


class _BaselineMetric(_Loose):
    mean: float | None
    higher_is_better: bool
    unit: str


class _Baseline(_Loose):
    schema_version: Literal[1]
    mode: Literal["dataset", "traces"]
    source: dict[str, Any]
    cases: list[_BaselineCase]
    metrics: dict[str, _BaselineMetric]


def load_baseline(
    path: Path, *, mode: str, dataset: tuple[str, int | None] | None, metrics: Sequence[str]
) -> dict[str, Any]:
    """The report to compare with, checked whole before anything runs: it must be readable and
    measure what this run measures (the same mode, dataset name and version, and metrics)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalInputError(f"baseline report not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalInputError(f"baseline {path} is not a readable JSON report ({exc})") from None
    if not (isinstance(data, dict) and "cases" in data and "metrics" in data):
        raise EvalInputError(f"baseline {path} is not an evals report (no cases or metrics)")
    try:
        baseline = _Baseline.model_validate(data)
    except ValidationError as exc:
        raise EvalInputError(f"baseline {path} is not a valid evals report: {explain(exc)}") from None
    if baseline.mode != mode:
        raise EvalInputError(f"baseline {path} is a {baseline.mode} report; this run is in {mode} mode")
    if dataset is not None:
        theirs = (baseline.source.get("name"), baseline.source.get("version"))
        if theirs != dataset:
            raise EvalInputError(
                f"baseline {path} measured dataset {theirs[0]} v{theirs[1]}, this run measures "
                f"{dataset[0]} v{dataset[1]}: compare runs of the same dataset version"
            )
    if set(baseline.metrics) != set(metrics):
        raise EvalInputError(
            f"baseline {path} measured the metrics {sorted(baseline.metrics)}, this run measures "
            f"{sorted(metrics)}: pass --metrics {','.join(sorted(baseline.metrics))} to compare"
        )
    return {**baseline.model_dump(), "_path": str(path)}


def compare(report: dict[str, Any], baseline: dict[str, Any], thresholds: Thresholds) -> dict[str, Any]:
    """A case is worse when a check that passed in the baseline fails now, whatever else it fixed;
    only the checks both runs made are compared."""
    before = {c["id"]: c for c in baseline["cases"]}
    better, worse, same = [], [], 0
    for case in report["cases"]:
        old = before.get(case["id"])
        if old is None:
            continue
        old_checks: dict[str, bool] = old["checks"]
        now_checks: dict[str, bool] = case["checks"]
        shared = now_checks.keys() & old_checks.keys()
        change = {
            "id": case["id"],
            "before": old["quality"],
            "after": case["quality"],
            "fixed": sorted(k for k in shared if now_checks[k] and not old_checks[k]),
            "broke": sorted(k for k in shared if old_checks[k] and not now_checks[k]),
        }
        if change["broke"]:
            worse.append(change)
        elif change["fixed"]:
            better.append(change)
        else:
            same += 1
    current_ids = {c["id"] for c in report["cases"]}
    deltas = {}
    for name, now in report["metrics"].items():
        old_metric = baseline["metrics"].get(name)
        if not old_metric or now["mean"] is None or old_metric.get("mean") is None:
            continue
        delta = now["mean"] - old_metric["mean"]
        deltas[name] = {
            "before": old_metric["mean"],
            "after": now["mean"],
            "delta": _round(delta),
            "improvement": _round(delta if now["higher_is_better"] else -delta),
        }
    gate = thresholds.baseline
    failures = []
    if gate.max_worse_cases is not None and len(worse) > gate.max_worse_cases:
        failures.append(
            f"baseline: {len(worse)} case(s) got worse, a check that passed now fails "
            f"(allowed {gate.max_worse_cases})"
        )
    if gate.max_mean_drop is not None:
        for name, d in deltas.items():
            if report["metrics"][name]["unit"] == "score" and d["improvement"] < -gate.max_mean_drop:
                failures.append(
                    f"baseline: {name} mean moved the wrong way by {abs(d['delta'])} "
                    f"({d['before']} -> {d['after']}, allowed {gate.max_mean_drop})"
                )
    return {
        "path": baseline.get("_path"),
        "source": baseline.get("source"),
        "better": better,
        "worse": worse,
        "unchanged": same,
        "new_cases": sorted(current_ids - set(before)),
        "missing_cases": sorted(set(before) - current_ids),
        "metrics": deltas,
        "gate_failures": failures,
    }


def build(
    *,
    mode: str,
    source: dict[str, Any],
    records: Sequence[TurnRecord],
    scores: Scores,
    metrics: Sequence[Metric],
    thresholds: Thresholds,
    baseline: dict[str, Any] | None,
    extra: dict[str, Any],
    unscorable: Collection[str] = (),
) -> dict[str, Any]:
    """`unscorable`: metrics this run cannot score by design (trace mode has no dataset expectations;
    `--unscored` leaves the scores a trace has alone), whose gates need no samples. With no turn at
    all, the caller says why (trace mode: no traces matched)."""
    per_metric = {
        m.name: summarize(
            m,
            [scores[r.key][m.name] for r in records if m.name in scores[r.key]],
            thresholds.metrics.get(m.name),
            expected=bool(records) and m.name not in unscorable,
        )
        for m in metrics
    }
    case_list = cases(records, scores)
    all_checks = [ok for c in case_list for ok in c["checks"].values()]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "mode": mode,
        "source": source,
        **extra,
        "summary": {
            "cases": len(case_list),
            "cases_passed": sum(c["passed"] for c in case_list),
            "turns": len(records),
            "checks": len(all_checks),
            "checks_passed": sum(all_checks),
        },
        "metrics": per_metric,
        "groups": groups(per_metric),
        "cases": case_list,
        "worst": [
            c["id"] for c in sorted(case_list, key=lambda c: (c["quality"], c["id"])) if not c["passed"]
        ][:WORST],
    }
    failures = [f for m in per_metric.values() for f in m["gate_failures"]]
    report["baseline"] = compare(report, baseline, thresholds) if baseline is not None else None
    if report["baseline"] is not None:
        failures += report["baseline"]["gate_failures"]
    report["gate"] = {"passed": not failures, "failures": failures}
    return report


def fail(report: dict[str, Any], failure: str) -> None:
    """A failure found after the report was built (trace mode's write-back): the gate fails with it."""
    report["gate"]["failures"].append(failure)
    report["gate"]["passed"] = False
