"""Database pool gauges: connections in use, open and allowed, per pool, read when Prometheus scrapes."""

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

GAUGES = (
    ("db_pool_in_use", "Connections checked out of the pool"),
    ("db_pool_size", "Connections the pool holds open"),
    ("db_pool_max", "Most connections the pool may open"),
)
# In multiprocess mode a scrape reaches one worker, which cannot see its siblings' pools: each worker
# copies its numbers into these file-backed gauges (summed over live workers) every few seconds instead.
SHARE_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class PoolStats:
    pool: str
    in_use: int
    size: int
    max: int


PoolReader = Callable[[], Iterable[PoolStats]]


def pool_reader(engine: AsyncEngine, pool: AsyncConnectionPool, *, engine_max: int) -> PoolReader:
    """SQLAlchemy's pool (CRUD requests) and the psycopg pool (turns, checkpoints, memory reads).

    `engine_max` is the engine's pool size plus its overflow, which QueuePool keeps private.
    """

    def read() -> list[PoolStats]:
        found = []
        sa_pool = engine.pool
        if isinstance(sa_pool, QueuePool):
            in_use = sa_pool.checkedout()
            found.append(PoolStats("sqlalchemy", in_use, size=in_use + sa_pool.checkedin(), max=engine_max))
        stats = pool.get_stats()
        size = stats.get("pool_size", 0)
        found.append(
            PoolStats("psycopg", in_use=size - stats.get("pool_available", 0), size=size, max=pool.max_size)
        )
        return found

    return read


class PoolCollector(Collector):
    """Several apps in one process (tests) register a reader each; their numbers add up per pool."""

    def __init__(self) -> None:
        self.readers: list[PoolReader] = []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        totals: dict[str, list[int]] = {}
        for read in list(self.readers):
            for s in read():
                total = totals.setdefault(s.pool, [0, 0, 0])
                for i, value in enumerate((s.in_use, s.size, s.max)):
                    total[i] += value
        families = [GaugeMetricFamily(name, doc, labels=["pool"]) for name, doc in GAUGES]
        for pool, numbers in sorted(totals.items()):
            for family, value in zip(families, numbers, strict=True):
                family.add_metric([pool], value)
        return families


COLLECTOR = PoolCollector()
REGISTRY.register(COLLECTOR)
_SHARED = [Gauge(name, doc, ["pool"], multiprocess_mode="livesum", registry=None) for name, doc in GAUGES]


async def share_forever(read: PoolReader) -> None:
    """Multiprocess mode: this worker's numbers into the shared files until cancelled."""
    while True:
        for s in read():
            for gauge, value in zip(_SHARED, (s.in_use, s.size, s.max), strict=True):
                gauge.labels(s.pool).set(value)
        await asyncio.sleep(SHARE_EVERY_SECONDS)
