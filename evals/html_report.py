"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, nothing fetched)."""

import json
from collections.abc import Iterable
from html import escape
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d232a;padding:0 1rem}
h1{font-size:1.5rem}h2{margin-top:2.2rem;border-bottom:1px solid #d5dbe1;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0}th,td{text-align:left;padding:.3rem .5rem;
border-bottom:1px solid #e6eaee;vertical-align:top}th{background:#f4f6f8}
.pass{color:#17733a;font-weight:600}.fail{color:#b42318;font-weight:600}.muted{color:#667085}
.banner{padding:.8rem 1rem;border-radius:6px;margin:1rem 0}.banner.pass{background:#e8f5ec}
.banner.fail{background:#fdecea}.charts{display:flex;flex-wrap:wrap;gap:1rem}
.chart{border:1px solid #e6eaee;border-radius:6px;padding:.5rem}
.case{border:1px solid #e6eaee;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.msg{white-space:pre-wrap;background:#f8f9fb;border-radius:4px;padding:.4rem .6rem;margin:.2rem 0}
.user{border-left:3px solid #3b6fd8}.assistant{border-left:3px solid #17733a}
code{font-size:12px}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """Cells are HTML already; head is plain text."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _status(ok: bool) -> str:
    return '<span class="pass">pass</span>' if ok else '<span class="fail">fail</span>'


def histogram_svg(name: str, summary: dict[str, Any]) -> str:
    counts: list[int] = summary["histogram"]["counts"]
    edges: list[float] = summary["histogram"]["edges"]
    width, height, pad = 280, 140, 24
    top = max(counts, default=0) or 1
    bar_w = (width - 2 * pad) / len(counts)
    color = "#3b6fd8" if summary["higher_is_better"] else "#c4631a"
    bars = []
    for i, count in enumerate(counts):
        h = (height - 2 * pad) * count / top
        x, y = pad + i * bar_w, height - pad - h
        label = f"{_fmt(edges[i])} to {_fmt(edges[i + 1])}: {count}"
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(label)}</title></rect>"
        )
    direction = "higher is better" if summary["higher_is_better"] else "lower is better"
    return (
        f'<div class="chart"><svg width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(name)} distribution">'
        f'<text x="{pad}" y="14" font-size="12" font-weight="600">{escape(name)} '
        f'<tspan font-weight="400" fill="#667085">({direction}, n={summary["n"]})</tspan></text>'
        + "".join(bars)
        + f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#98a2b3"/>'
        f'<text x="{pad}" y="{height - 8}" font-size="10">{_fmt(edges[0])}</text>'
        f'<text x="{width - pad}" y="{height - 8}" font-size="10" text-anchor="end">'
        f"{_fmt(edges[-1])} {escape(summary['unit'])}</text></svg></div>"
    )


def _header(report: dict[str, Any]) -> str:
    gate = report["gate"]
    source = report["source"]
    if report["mode"] == "dataset":
        what = f"dataset <b>{escape(str(source['name']))}</b> v{escape(_fmt(source['version']))}"
        what += f' <span class="muted">sha256 {escape(source["sha256"][:12])}</span>'
    else:
        filters = escape(json.dumps(source.get("filters")))
        what = f"Langfuse traces from {escape(str(source.get('host')))} ({filters})"
    failures = "".join(f"<li>{escape(f)}</li>" for f in gate["failures"])
    notes = [f"skipped trace {n}" for n in source.get("skipped") or []]
    notes += [f"score not written: {f}" for f in report.get("scores_failed") or []]
    listed = "".join(f"<li>{escape(n)}</li>" for n in notes)
    verdict = "PASSED" if gate["passed"] else "FAILED"
    s = report["summary"]
    return (
        f"<h1>Evals report: {what}</h1>"
        f'<p class="muted">{escape(report.get("created_at", ""))} · agent model '
        f"{escape(str(report.get('agent_model')))} · judge {escape(str(report.get('judge_model')))} · "
        f"{escape(_fmt(report.get('duration_s')))} s</p>"
        f'<div class="banner {"pass" if gate["passed"] else "fail"}"><b>Gate {verdict}</b>'
        f"{f'<ul>{failures}</ul>' if failures else ''}</div>"
        f"<p>{s['cases_passed']} of {s['cases']} cases passed every check; "
        f"{s['checks_passed']} of {s['checks']} checks passed over {s['turns']} turns.</p>"
        + (f'<ul class="muted">{listed}</ul>' if listed else "")
    )


def _gate_status(m: dict[str, Any]) -> str:
    # A gated metric with no samples fails (its failure says why); an ungated one was just not measured.
    if m["gate_failures"] or m["n"]:
        return _status(not m["gate_failures"])
    return '<span class="muted">not measured</span>'


def _metrics(report: dict[str, Any]) -> str:
    rows = []
    for name, m in report["metrics"].items():
        gate = ", ".join(f"{k} {_fmt(v)}" for k, v in m["gate"].items()) or "-"
        rows.append(
            [
                f"<b>{escape(name)}</b><br><span class='muted'>{escape(m['description'])}</span>",
                escape(m["kind"]),
                "↑ higher" if m["higher_is_better"] else "↓ lower",
                escape(m["unit"]),
                str(m["n"]),
                _fmt(m["mean"]),
                _fmt(m["median"]),
                _pct(m["pass_rate"]),
                escape(gate),
                _gate_status(m),
            ]
        )
    groups = report["groups"]
    group_rows = [
        [escape(label.replace("_", " ")), escape(", ".join(g["metrics"])), _fmt(g["mean"])]
        for label, g in groups.items()
    ]
    head = ["metric", "kind", "better", "unit", "n", "mean", "median", "pass rate", "gate", "status"]
    return (
        "<h2>Metrics</h2>"
        + _table(head, rows)
        + "<p class='muted'>0..1 metrics are averaged only with metrics of the same direction:</p>"
        + _table(["group", "metrics", "mean of means"], group_rows)
        + "<h2>Score distributions</h2><div class='charts'>"
        + "".join(histogram_svg(n, m) for n, m in report["metrics"].items() if m["n"])
        + "</div>"
    )


def _baseline(report: dict[str, Any]) -> str:
    base = report.get("baseline")
    if not base:
        return ""
    metric_rows = [
        [escape(n), _fmt(d["before"]), _fmt(d["after"]), _fmt(d["delta"]), _status(d["improvement"] >= 0)]
        for n, d in base["metrics"].items()
    ]

    def changes(items: list[dict[str, Any]], key: str) -> str:
        rows = [
            [escape(c["id"]), _fmt(c["before"]), _fmt(c["after"]), escape(", ".join(c[key]) or "-")]
            for c in items
        ]
        return _table(["case", "before", "after", "checks"], rows) if rows else "<p class='muted'>none</p>"

    return (
        f"<h2>Against the baseline</h2><p class='muted'>{escape(str(base['path']))}; a case is worse "
        "when a check that passed in the baseline fails now; "
        f"{base['unchanged']} unchanged, new: {escape(', '.join(base['new_cases']) or 'none')}, "
        f"missing: {escape(', '.join(base['missing_cases']) or 'none')}</p>"
        + _table(["metric", "baseline mean", "mean", "change", "direction"], metric_rows)
        + f"<h3>Worse ({len(base['worse'])})</h3>"
        + changes(base["worse"], "broke")
        + f"<h3>Better ({len(base['better'])})</h3>"
        + changes(base["better"], "fixed")
    )


def _turn(turn: dict[str, Any]) -> str:
    parts = [f"<div class='msg {escape(m['role'])}'>{escape(m['content'])}</div>" for m in turn["history"]]
    parts.append(
        f"<div class='msg user'><b>user</b> ({escape(turn['session'])}): {escape(turn['user'])}</div>"
    )
    for call in turn["tool_calls"]:
        parts.append(
            f"<div class='muted'>tool <code>{escape(call['name'])}({escape(json.dumps(call['args']))})</code>"
            f" → {escape(str(call['result']))}</div>"
        )
    if turn["memories"]:
        parts.append(f"<div class='muted'>recalled: {escape(' | '.join(turn['memories']))}</div>")
    reply = turn["reply"] or (f"[error] {turn['error']}" if turn["error"] else "(empty)")
    parts.append(f"<div class='msg assistant'><b>assistant</b>: {escape(reply)}</div>")
    rows = [
        [escape(n), _fmt(s["value"]), _status(s["passed"]), escape(s["reason"])]
        for n, s in turn["scores"].items()
    ]
    return "".join(parts) + _table(["metric", "value", "", "reason"], rows)


def _worst(report: dict[str, Any]) -> str:
    by_id = {c["id"]: c for c in report["cases"]}
    if not report["worst"]:
        return "<h2>Worst cases</h2><p>Every case passed every check.</p>"
    blocks = []
    for case_id in report["worst"]:
        case = by_id[case_id]
        turns = "".join(f"<h4>Turn {t['index']}</h4>{_turn(t)}" for t in case["turns"])
        blocks.append(
            f"<div class='case'><h3>{escape(case_id)} <span class='muted'>{escape(case['category'])} · "
            f"{_pct(case['quality'])} of checks passed</span></h3>{turns}</div>"
        )
    return "<h2>Worst cases</h2>" + "".join(blocks)


def _all_cases(report: dict[str, Any]) -> str:
    rows = [
        [escape(c["id"]), escape(c["category"]), _pct(c["quality"]), _status(c["passed"])]
        for c in report["cases"]
    ]
    return "<h2>All cases</h2>" + _table(["case", "category", "checks passed", "status"], rows)


def render(report: dict[str, Any]) -> str:
    body = _header(report) + _metrics(report) + _baseline(report) + _worst(report) + _all_cases(report)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Evals report</title><style>{CSS}</style></head><body>{body}</body></html>"
    )
