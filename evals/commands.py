"""What `run` and `traces` do: check every input first, then get the turns and score them.

Inputs are read and checked before anything starts, so that bad input costs no agent or judge call;
the async part only does the work, and the reports are written after it.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.config import Settings, load_settings
from evals import agent_runner, datasets, report, thresholds, traces
from evals.errors import EvalInputError
from evals.judge import Judge
from evals.langfuse_api import LangfuseAPI
from evals.metrics import ALL, JudgeMetric, Metric
from evals.output import finish
from evals.progress import Progress
from evals.records import TurnRecord
from evals.scoring import judge_jobs, score_all
from evals.settings import EvalSettings


@dataclass(frozen=True)
class Common:
    metrics: str
    thresholds: Path
    baseline: Path | None
    out: Path | None
    progress: bool | None  # None: live on a terminal


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, checked: what to measure, the gates, the baseline, the judge."""

    settings: EvalSettings
    metrics: list[Metric]
    limits: thresholds.Thresholds
    baseline: dict[str, Any] | None
    progress: bool | None
    started: float

    @property
    def needs_judge(self) -> bool:
        return any(isinstance(m, JudgeMetric) for m in self.metrics)


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(x) for x in error['loc'])}: {error['msg']}"


def select_metrics(spec: str) -> list[Metric]:
    """Comma-separated names, or `all`, `deterministic`, `judge`."""
    chosen: list[Metric] = []
    for word in (w.strip() for w in spec.split(",") if w.strip()):
        if word == "all":
            group = list(ALL.values())
        elif word in ("deterministic", "judge"):
            group = [m for m in ALL.values() if m.kind == word]
        elif word in ALL:
            group = [ALL[word]]
        else:
            raise EvalInputError(
                f"unknown metric {word!r}; known: all, deterministic, judge, {', '.join(ALL)}"
            )
        chosen += [m for m in group if m not in chosen]
    if not chosen:
        raise EvalInputError("no metrics selected")
    return chosen


def plan(common: Common) -> Plan:
    started = time.monotonic()
    try:
        settings = EvalSettings()
    except ValidationError as exc:
        raise EvalInputError(f"bad EVAL_* setting: {_first(exc)}") from None
    metrics = select_metrics(common.metrics)
    checked = Plan(
        settings=settings,
        metrics=metrics,
        limits=thresholds.load(common.thresholds, ALL),
        baseline=report.load_baseline(common.baseline) if common.baseline else None,
        progress=common.progress,
        started=started,
    )
    if checked.needs_judge and not settings.judge_configured:
        raise EvalInputError(
            "judge metrics need EVAL_JUDGE_BASE_URL and EVAL_JUDGE_MODEL "
            "(or pass --metrics deterministic to skip them)"
        )
    return checked


def agent_settings(ev: EvalSettings) -> Settings:
    """The service's settings, but on the evals' own database and quiet: no tracing, errors-only logs."""
    try:
        settings = load_settings(
            database_url=ev.database_url,
            data_dir=ev.data_dir,
            log_level="ERROR",
            langfuse_tracing_enabled=False,
        )
    except ValidationError as exc:
        raise EvalInputError(f"bad agent setting: {_first(exc)}") from None
    if not settings.llm_configured:
        raise EvalInputError("dataset mode runs the agent's model: set LLM_BASE_URL and/or LLM_API_KEY")
    return settings


def _out_dir(p: Plan, common: Common, label: str) -> Path:
    return common.out or p.settings.reports_dir / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{label}"


async def _scored(
    p: Plan, *, mode: str, source: dict[str, Any], records: Sequence[TurnRecord], judge: Judge | None
) -> dict[str, Any]:
    progress = Progress("judge", len(judge_jobs(records, p.metrics)), live=p.progress)
    try:
        scores = await score_all(records, p.metrics, p.limits, judge=judge, on_judged=progress.advance)
    finally:
        progress.close()
    built = report.build(
        mode=mode,
        source=source,
        records=records,
        scores=scores,
        metrics=p.metrics,
        thresholds=p.limits,
        baseline=p.baseline,
        extra={
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - p.started, 2),
            "judge_model": judge.model if judge else None,
            "judge": asdict(judge.stats) if judge else None,
        },
    )
    built["_scores"] = scores  # for trace mode's write-back; never written out
    return built


async def _dataset_report(
    p: Plan, dataset: datasets.Dataset, settings: Settings, concurrency: int
) -> dict[str, Any]:
    judge = Judge(p.settings) if p.needs_judge else None
    try:
        progress = Progress("agent", sum(len(c.turns) for c in dataset.cases), live=p.progress)
        try:
            async with agent_runner.open_runtime(settings) as runtime:
                records = await agent_runner.run_dataset(
                    runtime, dataset, concurrency=concurrency, on_turn=progress.advance
                )
        finally:
            progress.close()
        built = await _scored(p, mode="dataset", source=dataset.describe(), records=records, judge=judge)
    finally:
        if judge is not None:
            await judge.aclose()
    built["agent_model"] = settings.llm_model
    return built


def run_dataset(dataset_ref: str, *, concurrency: int | None, cases: str | None, common: Common) -> int:
    dataset = datasets.load(dataset_ref)
    if cases:
        wanted = {c.strip() for c in cases.split(",")}
        unknown = wanted - {c.id for c in dataset.cases}
        if unknown:
            raise EvalInputError(f"no such case(s) in {dataset.name}: {sorted(unknown)}")
        dataset = replace(dataset, cases=[c for c in dataset.cases if c.id in wanted])
    p = plan(common)
    settings = agent_settings(p.settings)
    built = asyncio.run(_dataset_report(p, dataset, settings, concurrency or p.settings.case_concurrency))
    return finish(built, _out_dir(p, common, f"{dataset.name}-v{dataset.version}"))


async def _traces_report(
    p: Plan, api: LangfuseAPI, filters: traces.TraceFilters, write_back: bool
) -> dict[str, Any]:
    judge = Judge(p.settings) if p.needs_judge else None
    try:
        async with api:
            found = await traces.fetch(api, filters, {m.name for m in p.metrics})
            records = [traces.to_record(t) for t in found]
            source = {"host": api.host, "filters": filters.describe(), "traces": len(records)}
            built = await _scored(p, mode="traces", source=source, records=records, judge=judge)
            scores = built["_scores"]
            written = 0
            if write_back and records:
                total = sum(1 for r in records for s in scores[r.key].values() if s.value is not None)
                progress = Progress("scores", total, live=p.progress)
                try:
                    written = await traces.write_scores(
                        api, records, scores, judge_model=built["judge_model"], on_written=progress.advance
                    )
                finally:
                    progress.close()
    finally:
        if judge is not None:
            await judge.aclose()
    built["agent_model"] = None
    built["scores_written"] = written
    return built


def run_traces(filters: traces.TraceFilters, *, write_back: bool, common: Common) -> int:
    p = plan(common)
    ev = p.settings
    if not (ev.langfuse_public_key and ev.langfuse_secret_key):
        raise EvalInputError(
            "trace mode needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (and LANGFUSE_HOST)"
        )
    api = LangfuseAPI(
        ev.langfuse_host,
        public_key=ev.langfuse_public_key.get_secret_value(),
        secret_key=ev.langfuse_secret_key.get_secret_value(),
        timeout=ev.langfuse_timeout,
    )
    built = asyncio.run(_traces_report(p, api, filters, write_back))
    return finish(built, _out_dir(p, common, "traces"))
