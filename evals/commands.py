"""What `run` and `traces` do: check all input first (bad input costs no call), then run, score, report."""

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.config import Settings, load_settings
from evals import agent_runner, datasets, report, thresholds, traces
from evals.errors import EvalInputError, explain
from evals.judge import Judge, JudgeError, check_cache_dir
from evals.langfuse_api import LangfuseAPI
from evals.metrics import ALL, DeterministicMetric, JudgeMetric, Metric
from evals.output import finish
from evals.progress import progress
from evals.records import TurnRecord
from evals.scoring import Skip, judge_jobs, score_all
from evals.settings import EvalSettings, load_eval_settings


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


def plan(common: Common, *, mode: str, dataset: datasets.Dataset | None = None) -> Plan:
    """The checks that need no network, all of them before the first call anywhere."""
    started = time.monotonic()
    try:
        settings = load_eval_settings()
    except ValidationError as exc:
        raise EvalInputError(f"bad EVAL_* setting: {explain(exc)}") from None
    metrics = select_metrics(common.metrics)
    limits = thresholds.load(common.thresholds, ALL)
    baseline = None
    if common.baseline is not None:
        baseline = report.load_baseline(
            common.baseline,
            mode=mode,
            dataset=(dataset.name, dataset.version) if dataset else None,
            metrics=[m.name for m in metrics],
        )
    checked = Plan(settings, metrics, limits, baseline, common.progress, started)
    if checked.needs_judge:
        if not settings.judge_configured:
            raise EvalInputError(
                "judge metrics need EVAL_JUDGE_BASE_URL and EVAL_JUDGE_MODEL "
                "(or pass --metrics deterministic to skip them)"
            )
        try:
            check_cache_dir(settings.cache_dir)
        except OSError as exc:
            raise EvalInputError(f"EVAL_CACHE_DIR {settings.cache_dir} is not writable: {exc}") from None
    return checked


async def _check_judge(settings: EvalSettings) -> None:
    judge = Judge(settings)
    try:
        await judge.check()
    except JudgeError as exc:
        raise EvalInputError(
            f"the judge at {judge.url} (model {judge.model}) did not answer a first request: {exc}; "
            "check EVAL_JUDGE_BASE_URL, EVAL_JUDGE_MODEL and EVAL_JUDGE_API_KEY"
        ) from None
    finally:
        await judge.aclose()


def preflight(p: Plan) -> None:
    """One small judge call, so that a wrong URL, key or model fails before the agent's first turn."""
    if p.needs_judge:
        asyncio.run(_check_judge(p.settings))


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
        raise EvalInputError(f"bad agent setting: {explain(exc)}") from None
    if not settings.llm_configured:
        raise EvalInputError("dataset mode runs the agent's model: set LLM_BASE_URL and/or LLM_API_KEY")
    return settings


def _check_memory(p: Plan, dataset: datasets.Dataset, settings: Settings) -> None:
    if settings.memory_enabled or "memory_recalled" not in {m.name for m in p.metrics}:
        return
    needing = [c.id for c in dataset.cases if any(t.expect.memory_recalled for t in c.turns)]
    if needing:
        raise EvalInputError(
            f"MEMORY_ENABLED is false, but {len(needing)} case(s) expect recalled memories "
            f"({', '.join(needing[:5])}{', ...' if len(needing) > 5 else ''}): enable memory, or leave "
            "memory_recalled out of --metrics, or pick other --cases"
        )


def _out_dir(p: Plan, common: Common, label: str) -> Path:
    return common.out or p.settings.reports_dir / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{label}"


async def _scored(
    p: Plan,
    *,
    mode: str,
    source: dict[str, Any],
    records: Sequence[TurnRecord],
    judge: Judge | None,
    skip: Skip | None = None,
) -> dict[str, Any]:
    with progress("judge", len(judge_jobs(records, p.metrics, skip)), live=p.progress) as bar:
        scores = await score_all(records, p.metrics, p.limits, judge=judge, on_judged=bar.advance, skip=skip)
    unscorable = {n for names in (skip or {}).values() for n in names}
    if mode == "traces":
        unscorable |= {
            m.name for m in p.metrics if isinstance(m, DeterministicMetric) and m.needs_expectations
        }
    built = report.build(
        mode=mode,
        source=source,
        records=records,
        scores=scores,
        metrics=p.metrics,
        thresholds=p.limits,
        baseline=p.baseline,
        unscorable=unscorable,
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
        turns = sum(len(c.turns) for c in dataset.cases)
        with progress("agent", turns, live=p.progress) as bar:
            async with agent_runner.open_runtime(settings) as runtime:
                records = await agent_runner.run_dataset(
                    runtime, dataset, concurrency=concurrency, on_turn=bar.advance
                )
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
    p = plan(common, mode="dataset", dataset=dataset)
    settings = agent_settings(p.settings)
    _check_memory(p, dataset, settings)
    preflight(p)
    built = asyncio.run(_dataset_report(p, dataset, settings, concurrency or p.settings.case_concurrency))
    return finish(built, _out_dir(p, common, f"{dataset.name}-v{dataset.version}"))


async def _traces_report(
    p: Plan, api: LangfuseAPI, filters: traces.TraceFilters, write_back: bool
) -> dict[str, Any]:
    judge = Judge(p.settings) if p.needs_judge else None
    written = traces.Written()
    try:
        async with api:
            fetched = await traces.fetch(api, filters, p.metrics)
            records = fetched.records
            source = {
                "host": api.host,
                "filters": filters.describe(),
                "traces": len(records),
                "skipped": fetched.skipped,
            }
            skip = fetched.already_scored if filters.unscored else None
            built = await _scored(p, mode="traces", source=source, records=records, judge=judge, skip=skip)
            scores = built["_scores"]
            if write_back and records:
                with progress("scores", traces.score_count(records, scores), live=p.progress) as bar:
                    written = await traces.write_scores(
                        api, records, scores, judge_model=built["judge_model"], on_written=bar.advance
                    )
    finally:
        if judge is not None:
            await judge.aclose()
    built["agent_model"] = None
    built["scores_written"] = written.written
    built["scores_failed"] = written.failed
    if not records:
        sys.stderr.write("warning: no traces matched the filters\n")
        report.fail(built, "no traces matched the filters")
    if written.failed:
        # The report is kept and the scores that did go in stay there; the run still fails, so
        # that a cron job notices the scores it was run for are not all in Langfuse.
        report.fail(built, f"langfuse: {len(written.failed)} score(s) could not be written back")
    return built


def run_traces(filters: traces.TraceFilters, *, write_back: bool, common: Common) -> int:
    p = plan(common, mode="traces")
    ev = p.settings
    if not (ev.langfuse_public_key and ev.langfuse_secret_key):
        raise EvalInputError(
            "trace mode needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (and LANGFUSE_HOST)"
        )
    preflight(p)
    api = LangfuseAPI(
        ev.langfuse_host,
        public_key=ev.langfuse_public_key.get_secret_value(),
        secret_key=ev.langfuse_secret_key.get_secret_value(),
        timeout=ev.langfuse_timeout,
    )
    built = asyncio.run(_traces_report(p, api, filters, write_back))
    return finish(built, _out_dir(p, common, "traces"))
