"""The PASS/MISS verdicts and the printed report."""

import os
import platform
import sys
from collections.abc import Callable
from typing import Any

from scripts.bench import load

MAIN = ("floor", "memory_on", "infer_off", "memory_off", "memory_remote")
DEPLOYED = "memory_on"
GUNICORN = ("floor_x2", "gunicorn_x2")
LABEL_W, COL_W = 44, 17


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, int | float) and isinstance(b, int | float) and b else None


def _check(
    name: str, value: float | None, unit: str, target: str, ok: bool, detail: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "target": target,
        "pass": None if value is None else ok,
        "detail": detail,
    }


def evaluate(res: dict[str, Any], plan: load.Plan) -> list[dict[str, Any]]:
    """PASS/MISS per target, all on the deployed configuration (memory on); n/a when not measured."""
    on, floor = res.get(DEPLOYED) or {}, res.get("floor") or {}
    tps, ftps = _get(on, "users_50", "turns_per_s"), _get(floor, "users_50", "turns_per_s")
    errors = _get(on, "users_50", "errors")
    tput = _ratio(tps, ftps)
    chat_cpu, stream_cpu = _get(on, "chat", "server_cpu_ms"), _get(on, "stream", "server_cpu_ms")
    c50, c99 = _get(on, "chat", "overhead_ms", "p50"), _get(on, "chat", "overhead_ms", "p99")
    s50, s99 = _get(on, "stream", "overhead_ms", "p50"), _get(on, "stream", "overhead_ms", "p99")
    cpu_ratio = _ratio(stream_cpu, chat_cpu)
    far = _get(on, "long_thread", "ratio")
    r0, r1 = _get(on, "soak", "start", "rss_mb"), _get(on, "soak", "end", "rss_mb")
    t0, t1 = _get(on, "soak", "start", "threads"), _get(on, "soak", "end", "threads")
    rss = (r1 / r0 - 1) * 100 if r0 and r1 else None
    threads = t1 - t0 if t0 is not None and t1 is not None else None
    n = _get(on, "soak", "turns") or 0
    p99_50 = [(_ratio(a, b) if a is not None and b and b > 0 else None) for a, b in ((c99, c50), (s99, s50))]
    return [
        _check(
            "throughput at 50 users / floor",
            tput,
            "x",
            ">= 0.70x, 0 errors",
            tput is not None and tput >= 0.7 and errors == 0,
            f"{_num(tps)} vs {_num(ftps)} turns/s, {errors} errors",
        ),
        _check(
            "server CPU per chat turn", chat_cpu, " ms", "<= 20 ms", (chat_cpu or 0) <= 20, "jobs included"
        ),
        _check(
            "server CPU per streamed turn",
            stream_cpu,
            " ms",
            "<= 20 ms",
            (stream_cpu or 0) <= 20,
            "jobs included",
        ),
        _check("chat overhead p50, 1 user", c50, " ms", "<= 15 ms", (c50 or 0) <= 15),
        _check("stream first-token overhead p50", s50, " ms", "<= 15 ms", (s50 or 0) <= 15),
        _check(
            "chat overhead p99 / p50", p99_50[0], "x", "<= 3x", (p99_50[0] or 0) <= 3, f"p99 {_num(c99)} ms"
        ),
        _check(
            "stream first-token p99 / p50",
            p99_50[1],
            "x",
            "<= 3x",
            (p99_50[1] or 0) <= 3,
            f"p99 {_num(s99)} ms",
        ),
        _check("stream CPU / chat CPU", cpu_ratio, "x", "<= 1.5x", (cpu_ratio or 0) <= 1.5),
        _check(
            f"turn {plan.far_turn} / turn 1 (medians)",
            far,
            "x",
            "<= 1.05x",
            (far or 0) <= 1.05,
            f"{_num(_get(on, 'long_thread', 'early_median_ms'))} -> "
            f"{_num(_get(on, 'long_thread', 'late_median_ms'))} ms",
        ),
        _check(
            f"RSS growth over {n:,} turns",
            rss,
            " %",
            "<= 5 %",
            (rss or 0) <= 5,
            f"{_num(r0)} -> {_num(r1)} MB",
        ),
        _check(f"thread growth over {n:,} turns", threads, "", "<= 2", (threads or 0) <= 2, f"{t0} -> {t1}"),
    ]


def _span(turns: Any) -> str:
    return f"{turns[0]}-{turns[1]}" if isinstance(turns, list) and len(turns) == 2 else "n/a"


def _num(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else (str(value) if isinstance(value, int) else f"{value:.{digits}f}")


def fmt(value: Any, unit: str = " ms", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):  # already formatted
        return value
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}{unit}"


Cell = Callable[[dict[str, Any], dict[str, Any]], Any]  # (server, its floor) -> value


def _rows(plan: load.Plan) -> list[tuple[str, Cell, str]]:
    def phase(name: str, *keys: str) -> Cell:
        return lambda d, f: _cell(d, name, *keys)

    def level(n: int, name: str = "") -> Cell:
        def cell(d: dict[str, Any], f: dict[str, Any]) -> Any:
            lv = d.get(name or f"users_{n}") or {}
            if "failed" in lv:
                return "FAILED"
            return None if "turns_per_s" not in lv else f"{lv['turns_per_s']:.1f} ({lv['errors']})"

        return cell

    def spread(name: str, key: str) -> Cell:
        def cell(d: dict[str, Any], f: dict[str, Any]) -> Any:
            ms = _get(d, name, key) or {}
            return None if ms.get("p50") is None else f"{ms['p50']:.0f} / {ms['p99']:.0f} ms"

        return cell

    def busy(n: int, name: str = "") -> Cell:
        def cell(d: dict[str, Any], f: dict[str, Any]) -> Any:
            b = _get(d, name or f"users_{n}", "busy_cores") or {}
            return None if not b else f"{b['server']:.2f} / {b['load']:.2f}"

        return cell

    def vs_floor(*keys: str) -> Cell:
        return lambda d, f: _ratio(_get(d, *keys), _get(f, *keys))

    rows: list[tuple[str, Cell, str]] = [
        ("chat overhead p50, 1 user", phase("chat", "overhead_ms", "p50"), " ms"),
        ("chat overhead p99, 1 user", phase("chat", "overhead_ms", "p99"), " ms"),
        ("stream first-token overhead p50", phase("stream", "overhead_ms", "p50"), " ms"),
        ("stream first-token overhead p99", phase("stream", "overhead_ms", "p99"), " ms"),
        ("server CPU per chat turn (jobs incl.)", phase("chat", "server_cpu_ms"), " ms"),
        ("  embedded PostgreSQL, per chat turn", phase("chat", "postgres_cpu_ms"), " ms"),
        ("server CPU per streamed turn (jobs incl.)", phase("stream", "server_cpu_ms"), " ms"),
        ("  embedded PostgreSQL, per streamed turn", phase("stream", "postgres_cpu_ms"), " ms"),
        (
            "stream CPU / chat CPU",
            lambda d, f: _ratio(_get(d, "stream", "server_cpu_ms"), _get(d, "chat", "server_cpu_ms")),
            "x",
        ),
        ("  memory jobs drained after chat turns in", phase("chat", "drain_s"), " s"),
    ]
    rows += [(f"turns/s (errors), {n} user{'s' if n > 1 else ''}", level(n), "") for n in plan.levels]
    n, runs = plan.run_users, f"runs_{plan.run_users}"
    rows += [
        (f"  chat turn p50 / p99, {n} users", spread(f"users_{n}", "latency_ms"), ""),
        ("  streamed turn, first token p50 / p99", spread(f"users_{n}", "first_token_ms"), ""),
        (f"runs/s (errors), {n} users, POST+stream", level(n, runs), ""),
        ("  run: POST to first event p50 / p99", spread(runs, "first_event_ms"), ""),
        ("  run: POST to done p50 / p99", spread(runs, "latency_ms"), ""),
        ("  cores busy during runs: server / load", busy(n, runs), ""),
    ]
    top = max(plan.levels)
    rows += [
        (f"server CPU per turn at {top} users", phase(f"users_{top}", "server_cpu_ms"), " ms"),
        *[(f"  cores busy at {n} users: server+PG / load", busy(n), "") for n in plan.levels[-2:]],
        (f"  memory jobs drained after {top} users in", phase(f"users_{top}", "drain_s"), " s"),
        *[
            (f"throughput / floor, {n} users", vs_floor(f"users_{n}", "turns_per_s"), "x")
            for n in plan.levels[1:]
        ],
        ("server CPU / floor, chat turn", vs_floor("chat", "server_cpu_ms"), "x"),
        ("server CPU / floor, streamed turn", vs_floor("stream", "server_cpu_ms"), "x"),
        ("start-up", lambda d, f: d.get("startup_s"), " s"),
    ]
    return rows


def _cell(d: dict[str, Any], name: str, *keys: str) -> Any:
    p = d.get(name) or {}
    return "FAILED" if "failed" in p else _get(p, *keys)


def _table(res: dict[str, Any], plan: load.Plan, names: tuple[str, ...], floor: str, out: list[str]) -> None:
    bold = sys.stdout.isatty()

    def head(name: str) -> str:
        text = f"{(res.get(name) or {}).get('label', name):>{COL_W}}"
        return f"\033[1m{text}\033[0m" if bold and name == DEPLOYED else text

    out.append(f"  {'':<{LABEL_W}}" + "".join(head(n) for n in names))
    marks = "".join(f"{'(as deployed)' if n == DEPLOYED else '':>{COL_W}}" for n in names)
    if marks.strip():
        out.append(f"  {'':<{LABEL_W}}{marks}")
    f = res.get(floor) or {}
    for label, cell, unit in _rows(plan):
        digits = 2 if unit == "x" else 1
        values = [fmt(cell(res.get(n) or {}, f), unit, digits) for n in names]
        out.append(f"  {label:<{LABEL_W}}" + "".join(f"{v:>{COL_W}}" for v in values))
    for n in names:
        d = res.get(n) or {}
        problems = [f"{n}: {d['failed']}"] if "failed" in d else []
        problems += [f"{n}/{k}: {v['failed']}" for k, v in d.items() if isinstance(v, dict) and "failed" in v]
        problems += [f"{n}: {d['jobs_purged']} memory jobs left, purged"] if d.get("jobs_purged") else []
        problems += [f"{n} error sample: {s}" for s in d.get("error_samples") or []]
        out.extend(f"  ! {p}" for p in problems)


def _open_streams(o: dict[str, Any], out: list[str]) -> None:
    if not o or "failed" in o:
        return
    idle, runs, held = (_get(o, k, "rss_mb") for k in ("idle", "with_runs", "with_streams"))
    per = (held - runs) * 1024 / o["streams"] if held and runs else None
    first = o.get("first_event_ms") or {}
    kinds = f" ({', '.join(o['failure_kinds'])})" if o.get("failure_kinds") else ""
    lines = [
        (
            f"{o['streams']:,} run streams open at once",
            f"{o['held']:,} held through {fmt(o.get('hold_s'), ' s')}, over {o['runs']} runs of"
            f" {o.get('pace_ms')} ms a token, {o['per_user']} a user (the server's"
            f" MAX_STREAMS_PER_USER={o['per_user']}, MAX_STREAMS_TOTAL={o['total']}); opened in"
            f" {fmt(o.get('ramp_s'), ' s')}",
        ),
        (
            "  first event of each stream (GET to event)",
            f"p50 {fmt(first.get('p50'))}, p99 {fmt(first.get('p99'))}, max {fmt(first.get('max'))};"
            f" {o['failures']} failed{kinds}, {o['ended_early']} ended early",
        ),
        (
            "  server RSS",
            f"idle {fmt(idle, ' MB')}; with the runs {fmt(runs, ' MB')}; with the streams"
            f" {fmt(held, ' MB')} ({fmt(per, ' KB', 0)} a stream)",
        ),
        (
            "  database while they are held",
            f"{fmt(o.get('db_statements_per_s'), '', 0)} statements/s (per-stream polling alone:"
            f" {fmt(o.get('per_stream_polling_per_s'), '', 0)}/s); PostgreSQL"
            f" {fmt(o.get('postgres_cores'), ' cores', 2)}, server {fmt(o.get('server_cores'), ' cores', 2)}",
        ),
    ]
    out.extend(f"  {label:<{LABEL_W}}{text}" for label, text in lines)


def render(res: dict[str, Any], plan: load.Plan, checks: list[dict[str, Any]]) -> str:
    out: list[str] = []
    cal = res.get("calibration") or {}
    out.append(f"== Chat service benchmark  ({os.cpu_count()} CPUs, Python {platform.python_version()})")
    out.append(f"   {res.get('pinning')}; production settings (APP_ENV=production, limits on, bcrypt 12)")
    out.append(
        f"   fake LLM: {plan.fake_ttft_ms:g} ms to the first token, {plan.reply_words} tokens"
        f" {plan.token_delay_ms:g} ms apart; alone via the OpenAI client: reply p50"
        f" {fmt(_get(cal, 'plain_ms', 'p50'))}, first token p50 {fmt(_get(cal, 'ttft_ms', 'p50'))}"
    )
    out.append("   overheads are latencies less those p50s; CPU per turn is read after the memory jobs ran")
    out.extend(["", f"-- one uvicorn process, pinned ({plan.level_seconds:g} s per level of users)"])
    _table(res, plan, MAIN, "floor", out)

    on = res.get(DEPLOYED) or {}
    g = on.get("long_thread") or {}
    s = on.get("soak") or {}
    out.extend(["", "-- memory on only"])
    early, late = _span(g.get("early_turns")), _span(g.get("late_turns"))
    out.append(
        f"  {'one thread, median latency of turns':<{LABEL_W}}{early}: {fmt(g.get('early_median_ms'))};"
        f" {late}: {fmt(g.get('late_median_ms'))}; ratio {fmt(g.get('ratio'), 'x', 3)}"
    )
    for what, name, unit in (("rss_mb", "RSS", " MB"), ("threads", "threads", "")):
        out.append(
            f"  {name + ' of the server process':<{LABEL_W}}{fmt(_get(s, 'start', what), unit)} -> "
            f"{fmt(_get(s, 'end', what), unit)} over {s.get('turns')} turns ({s.get('users')} users,"
            f" {s.get('errors')} errors, {fmt(s.get('elapsed_s'), ' s')})"
        )
    _open_streams(on.get("open_streams") or {}, out)
    m = on.get("memory_retrieval") or {}
    rows = f"{fmt(m.get('per_user'))} of {fmt(m.get('table_rows'))} ({fmt(m.get('dims'))} dims)"
    out.append(
        f"  {'recall, one user of a big table':<{LABEL_W}}{rows}"
        f" memories: p50 {fmt(_get(m, 'recall_ms', 'p50'))}, p99 {fmt(_get(m, 'recall_ms', 'p99'))}"
        f" (embed {fmt(_get(m, 'embed_ms', 'p50'))}, SQL {fmt(_get(m, 'sql_ms', 'p50'))})"
    )
    if plan.gunicorn:
        out.extend(
            [
                "",
                "-- 2 workers each on both CPUs, which the load generator and the fake LLM share:",
                "   memory on as docker-compose.yml runs it: gunicorn -c app/gunicorn_conf.py, the memory",
                "   jobs in one python -m app.worker (MEMORY_JOBS_IN_PROCESS=false; its CPU counts);"
                " the floor: uvicorn --workers 2",
            ]
        )
        _table(res, plan, GUNICORN, "floor_x2", out)

    out.extend(["", "-- targets (memory on, one pinned uvicorn process)"])
    for c in checks:
        verdict = "n/a" if c["pass"] is None else ("PASS" if c["pass"] else "MISS")
        value = fmt(c["value"], c["unit"], 2)
        out.append(f"  {c['name']:<36}{value:>10}   {c['target']:<20}{verdict:<6}{c['detail']}")
    out.append(f"\n   total run time {fmt(res.get('total_s'), ' s')}")
    return "\n".join(out)
