"""Writing the reports and the summary printed at the end of a run."""

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from evals import html_report


def write(built: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in built.items() if not k.startswith("_")}
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(html_report.render(data), encoding="utf-8")
    return json_path, html_path


def _mean(m: dict[str, Any]) -> str:
    if m["mean"] is None:
        return "-"
    return f"{m['mean']:.3f}" if m["unit"] == "score" else f"{m['mean']:.0f}"


def summary_lines(built: dict[str, Any]) -> list[str]:
    s = built["summary"]
    lines = [f"{s['cases_passed']}/{s['cases']} cases passed, {s['checks_passed']}/{s['checks']} checks"]
    lines.append(f"{'metric':<18}{'better':>8}{'n':>6}{'mean':>10}{'pass':>8}  gate")
    for name, m in built["metrics"].items():
        rate = "-" if m["pass_rate"] is None else f"{m['pass_rate']:.0%}"
        gate = "FAIL" if m["gate_failures"] else ("ok" if m["gate"] and m["n"] else "-")
        better = "higher" if m["higher_is_better"] else "lower"
        lines.append(f"{name:<18}{better:>8}{m['n']:>6}{_mean(m):>10}{rate:>8}  {gate}")
    for label, group in built["groups"].items():
        if group["mean"] is not None:
            lines.append(f"mean of {label.replace('_', ' ')} 0..1 metrics: {group['mean']:.3f}")
    if built.get("baseline"):
        b = built["baseline"]
        lines.append(f"against the baseline: {len(b['better'])} better, {len(b['worse'])} worse")
    if built.get("judge"):
        j = built["judge"]
        lines.append(f"judge: {j['requests']} requests, {j['cache_hits']} cached, {j['failures']} failed")
        if j.get("cache_error"):
            lines.append(f"judge cache: not written after {j['cache_error']}")
    skipped = built["source"].get("skipped") or []
    lines += [f"skipped trace {note}" for note in skipped]
    if "scores_written" in built:
        lines.append(f"traces scored: {s['turns']}; scores written to Langfuse: {built['scores_written']}")
        failed = built.get("scores_failed") or []
        lines += [f"  not written: {f}" for f in failed[:5]]
        if len(failed) > 5:
            lines.append(f"  ... and {len(failed) - 5} more (all in report.json)")
    gate = built["gate"]
    lines.append("gate: PASSED" if gate["passed"] else "gate: FAILED")
    lines += [f"  - {f}" for f in gate["failures"]]
    return lines


def finish(built: dict[str, Any], out: Path, stream: TextIO | None = None) -> int:
    """Write both reports, print the summary; the exit code is the gate's."""
    json_path, html_path = write(built, out)
    lines = [*summary_lines(built), f"report: {json_path}", f"html:   {html_path}"]
    (stream or sys.stdout).write("\n".join(lines) + "\n")
    return 0 if built["gate"]["passed"] else 1
