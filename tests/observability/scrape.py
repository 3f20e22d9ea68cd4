"""Reading /metrics in tests: values by sample name and labels, and the names a scrape declares."""

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

# The sample names each metric type exposes, from its family name (the parser drops `_total`).
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
    "untyped": ("",),
    "unknown": ("",),
}


@dataclass
class Scrape:
    text: str
    values: dict[tuple[str, frozenset[tuple[str, str]]], float]
    declared: set[str]  # every sample name a query could use, whether or not it has a sample yet

    def value(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Summed over the labels not given."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == name and wanted <= ls)


def parse(text: str) -> Scrape:
    values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    declared: set[str] = set()
    for family in text_string_to_metric_families(text):
        declared |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
            declared.add(sample.name)
    return Scrape(text, values, declared)


async def scrape(client: httpx.AsyncClient) -> Scrape:
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)
