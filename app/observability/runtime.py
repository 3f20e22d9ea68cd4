"""What the lifespan builds for observability: the callback handlers every turn gets, and the pool gauges."""

import asyncio
import contextlib
from dataclasses import dataclass, field

from langchain_core.callbacks import BaseCallbackHandler

from app.config import Settings
from app.observability import metrics, pools
from app.observability.callbacks import MetricsCallbackHandler
from app.observability.tracing import Tracing, open_tracing


@dataclass
class Telemetry:
    metrics: MetricsCallbackHandler
    tracing: Tracing | None
    pool_reader: pools.PoolReader
    _sharing: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def callbacks(self) -> list[BaseCallbackHandler]:
        """For every turn's run config; the same objects each time (their state is keyed by run id)."""
        return [self.metrics] if self.tracing is None else [self.metrics, self.tracing.handler]

    async def close(self) -> None:
        if self._sharing is not None:
            self._sharing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sharing
        with contextlib.suppress(ValueError):
            pools.COLLECTOR.readers.remove(self.pool_reader)
        if self.tracing is not None:
            await self.tracing.close()


def open_telemetry(settings: Settings, *, pool_reader: pools.PoolReader) -> Telemetry:
    metrics.check_multiprocess(settings.prometheus_multiproc_dir)
    telemetry = Telemetry(
        metrics=MetricsCallbackHandler(), tracing=open_tracing(settings), pool_reader=pool_reader
    )
    if metrics.multiprocess_enabled():
        telemetry._sharing = asyncio.create_task(pools.share_forever(pool_reader))
    else:
        pools.COLLECTOR.readers.append(pool_reader)
    return telemetry
