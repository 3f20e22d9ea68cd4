"""Command line and run order of the benchmark (see the package docstring)."""

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import httpx

import scripts.bench as bench
from scripts.bench import load, memory
from scripts.bench.client import Client
from scripts.bench.report import evaluate, render
from scripts.bench.services import Services, tail
from scripts.bench.stats import memory_and_threads


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


async def run(svc: Services, plan: load.Plan, res: dict[str, Any]) -> None:
    """Fills `res` phase by phase, so that an interrupted run still reports what it measured."""
    assert svc.app is not None
    pid = svc.app.pid
    res["app_start"] = memory_and_threads(pid)
    progress("calibration")
    res["calibration"] = cal = await load.calibrate(svc.llm_url, plan)
    fake_ms = cal["plain_ms"]["p50"] or plan.latency_ms
    fake_ttft_ms = cal["ttft_ms"]["p50"] or plan.fake_ttft_ms
    async with _http(svc) as http:
        client = Client(http)
        res["error_samples"] = client.error_samples
        phases = {
            "warmup": partial(load.warmup, client, plan),
            "sequential": partial(load.sequential, client, plan, pid, fake_ms),
            "stream": partial(load.streaming, client, plan, fake_ttft_ms),
            **{f"users_{n}": partial(load.concurrent, client, plan, n) for n in load.LEVELS},
            "long_thread": partial(load.long_thread, client, plan),
        }
        for name, phase in phases.items():
            svc.check_alive()
            progress(name)
            try:
                res[name] = await phase()
            except Exception as exc:  # one failed phase should not hide the others
                res[name] = {"failed": f"{type(exc).__name__}: {exc}"}
                progress(f"{name} failed: {res[name]['failed']}")
    res["app_end"] = memory_and_threads(pid)
    await memory_phases(svc, plan, res, fake_ms)


def _http(svc: Services) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max(load.LEVELS) + 10)
    timeout = httpx.Timeout(60.0, connect=10.0)
    return httpx.AsyncClient(base_url=svc.app_url, limits=limits, timeout=timeout, trust_env=False)


async def memory_phases(svc: Services, plan: load.Plan, res: dict[str, Any], fake_ms: float) -> None:
    """Retrieval at scale, then the same sequential turns with memory off and with a remote embedder."""
    rows = plan.memory_per_user * plan.memory_users
    progress(f"memory retrieval ({plan.memory_per_user:,} memories of one user, {rows:,} in the table)")
    try:
        res["memory_retrieval"] = await memory.retrieval(
            svc.data_dir, per_user=plan.memory_per_user, users=plan.memory_users, rounds=plan.memory_rounds
        )
    except Exception as exc:
        res["memory_retrieval"] = {"failed": f"{type(exc).__name__}: {exc}"}
    configs = {
        "memory_on": {},
        "memory_off": {"MEMORY_ENABLED": "false"},
        # Embeddings from an OpenAI-compatible server (the fake's /embeddings): no embedding CPU in the app.
        "memory_remote": {
            "MEMORY_EMBEDDER": "openai",
            "MEMORY_EMBEDDING_BASE_URL": svc.llm_url,
            "MEMORY_EMBEDDING_DIMS": "384",
            "MEMORY_COLLECTION": "memories_remote",
        },
    }
    for name, env in configs.items():
        progress(f"sequential turns, {name}")
        try:
            svc.stop_app()
            svc.start_app(**env)
            assert svc.app is not None
            async with _http(svc) as http:
                client = Client(http)
                await load.warmup(client, plan)
                res[name] = await load.sequential(client, plan, svc.app.pid, fake_ms, plan.memory_turns)
        except Exception as exc:
            res[name] = {"failed": f"{type(exc).__name__}: {exc}"}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small counts: about a minute instead of three")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    plan = load.QUICK if args.quick else load.Plan()

    signal.signal(signal.SIGTERM, _interrupt)
    svc = Services(plan.latency_ms, plan.token_delay_ms)
    res: dict[str, Any] = {}
    rc = 0
    t0 = time.perf_counter()
    try:
        progress(f"starting the fake LLM and the app (logs in {svc.tmp})")
        svc.start()
        res["app_startup_s"] = svc.startup_s
        asyncio.run(asyncio.wait_for(run(svc, plan, res), 120 if args.quick else 400))
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping the services", file=sys.stderr)
        rc = 130
    except Exception as exc:  # report what was measured, then fail
        print(f"bench: failed: {type(exc).__name__}: {exc}\n{tail(svc.app_log)}", file=sys.stderr)
        rc = 1
    finally:
        # A second Ctrl-C or SIGTERM must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        failed = any("failed" in v for v in res.values() if isinstance(v, dict))
        troubled = rc != 0 or failed or bool(res.get("error_samples"))
        svc.stop(keep_logs=troubled)
    if troubled:
        print(f"bench: logs kept in {svc.tmp}", file=sys.stderr)

    checks = evaluate(res, plan)
    print(render(res, plan, checks))
    total = time.perf_counter() - t0
    print(f"\n   total run time {total:.1f} s")
    if args.json:
        doc = {"quick": args.quick, "plan": asdict(plan), "results": res, "targets": checks, "total_s": total}
        Path(args.json).write_text(json.dumps(doc, indent=2))
        print(f"   wrote {args.json}")
    return rc or int(any(c["pass"] is None for c in checks))


if __name__ == "__main__":
    sys.exit(main())
