"""The JSON report: per-metric summaries, per-case results, the baseline comparison and the gate."""

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.errors import EvalInputError
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


def gate_failures(name: str, summary: dict[str, Any], gate: MetricGate | None) -> list[str]:
    if gate is None or summary["n"] == 0:
        return []
    mean, rate = summary["mean"], summary["pass_rate"]
    failures = []
    if gate.min_mean is not None and (mean is None or mean < gate.min_mean):
        failures.append(f"{name}: mean {mean} is below min_mean {gate.min_mean}")
    if gate.max_mean is not None and (mean is None or mean > gate.max_mean):
        failures.append(f"{name}: mean {mean} is above max_mean {gate.max_mean}")
    if gate.min_pass_rate is not None and rate < gate.min_pass_rate:
        failures.append(f"{name}: pass rate {rate} is below min_pass_rate {gate.min_pass_rate}")
    return failures


def summarize(metric: Metric, scores: list[Score], gate: MetricGate | None) -> dict[str, Any]:
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
    summary["gate_failures"] = gate_failures(metric.name, summary, gate)
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


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalInputError(f"baseline report not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalInputError(f"baseline {path} is not a readable JSON report ({exc})") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("cases"), list)
        and isinstance(data.get("metrics"), dict)
    ):
        raise EvalInputError(f"baseline {path} is not an evals report (no cases or metrics)")
    data["_path"] = str(path)
    return data


def compare(report: dict[str, Any], baseline: dict[str, Any], thresholds: Thresholds) -> dict[str, Any]:
    before = {c["id"]: c for c in baseline["cases"]}
    better, worse, same = [], [], 0
    for case in report["cases"]:
        old = before.get(case["id"])
        if old is None:
            continue
        old_checks: dict[str, bool] = old.get("checks", {})
        change = {
            "id": case["id"],
            "before": old["quality"],
            "after": case["quality"],
            "fixed": sorted(k for k, ok in case["checks"].items() if ok and old_checks.get(k) is False),
            "broke": sorted(k for k, ok in case["checks"].items() if not ok and old_checks.get(k) is True),
        }
        if case["quality"] > old["quality"]:
            better.append(change)
        elif case["quality"] < old["quality"]:
            worse.append(change)
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
        failures.append(f"baseline: {len(worse)} case(s) got worse (allowed {gate.max_worse_cases})")
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
) -> dict[str, Any]:
    per_metric = {
        m.name: summarize(
            m,
            [scores[r.key][m.name] for r in records if m.name in scores[r.key]],
            thresholds.metrics.get(m.name),
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
