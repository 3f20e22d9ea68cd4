"""Grafana dashboards load (valid JSON, panels with queries, the provisioned datasource) and every query
names a metric the app really exports."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import auth, new_session
from tests.observability.scrape import parse, scrape

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
FILES = ["service-overview.json", "agent.json"]
# PromQL words that look like metric names but are not.
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}
IDENTIFIER = re.compile(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*")


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((DASHBOARDS / name).read_text()))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found += panel.get("panels", []) if panel["type"] == "row" else [panel]
    return found


def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects: identifiers that are not functions, keywords or labels."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values may contain anything
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    names = set()
    for match in IDENTIFIER.finditer(expr):
        word = match.group(0)
        if word in KEYWORDS or expr[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def all_queries() -> list[tuple[str, str, str]]:
    return [
        (name, panel["title"], target["expr"])
        for name in FILES
        for panel in panels(load(name))
        for target in panel["targets"]
    ]


def test_the_extractor_finds_series_and_nothing_else():
    expr = (
        "histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket"
        '{route!~".*/x", status="5.."}[$__rate_interval]))) / ignoring(direction) group_left'
        " sum(rate(a_total[5m])) * 1e-9"
        " + on(pool) db_pool_max offset 5m"
    )
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "a_total", "db_pool_max"}


def test_a_declared_metric_counts_under_the_sample_names_its_type_exposes():
    text = "# HELP c_total c\n# TYPE c_total counter\n# HELP h h\n# TYPE h histogram\n# TYPE g gauge\n"
    declared = parse(text).declared
    assert {"c_total", "h_bucket", "h_sum", "h_count", "g"} <= declared
    assert not {"c", "h", "g_total"} & declared


@pytest.mark.parametrize("name", FILES)
def test_dashboards_are_valid_and_every_panel_queries_the_provisioned_datasource(name):
    dashboard = load(name)
    assert dashboard["uid"] and dashboard["title"]
    found = panels(dashboard)
    assert len(found) >= 6
    assert len({p["id"] for p in dashboard["panels"] + found}) == len(dashboard["panels"]) + sum(
        len(p.get("panels", [])) for p in dashboard["panels"]
    ), "panel ids are unique"
    for panel in found:
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus"
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert metric_names(target["expr"]), target["expr"]


async def test_every_query_names_a_metric_the_app_exports(client, user):
    sid = await new_session(client, user)
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "[calc:2+3]"}, headers=auth(user))
    assert r.status_code == 200, r.text
    exported = (await scrape(client)).declared
    used = {(name, title, metric) for name, title, expr in all_queries() for metric in metric_names(expr)}
    missing = sorted(f"{name} / {title}: {metric}" for name, title, metric in used if metric not in exported)
    assert not missing, "queries name metrics the app does not export:\n  " + "\n  ".join(missing)
    assert len({metric for *_, metric in used}) >= 20
