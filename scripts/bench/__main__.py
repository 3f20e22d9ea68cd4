"""Command line and run order of the benchmark (see the package docstring)."""

import argparse
import asyncio
import json
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import httpx

import scripts.bench as bench
from scripts.bench import load, memory, runs
from scripts.bench.client import Client, User
from scripts.bench.probe import Probe
from scripts.bench.report import DEPLOYED, evaluate, render
from scripts.bench.services import Server, Services, tail


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


def servers(plan: load.Plan, llm_url: str) -> list[Server]:
    remote = {
        # Embeddings from an OpenAI-compatible server (the fake's /embeddings): none computed in the app.
        "MEMORY_EMBEDDER": "openai",
        "MEMORY_EMBEDDING_BASE_URL": llm_url,
        "MEMORY_EMBEDDING_DIMS": "384",
        "MEMORY_COLLECTION": "memories_remote",
    }
    out = [
        Server("floor", "floor", "floor"),
        Server("memory_on", "memory on", "app"),
        Server("infer_off", "extraction off", "app", {"MEMORY_INFER": "false"}),
        Server("memory_off", "memory off", "app", {"MEMORY_ENABLED": "false"}),
        Server("memory_remote", "remote embedder", "app", remote),
    ]
    if plan.gunicorn:
        out += [
            Server("floor_x2", "floor x2", "floor", workers=2),
            # As docker-compose.yml runs it: extraction in its own process (python -m app.worker).
            Server("gunicorn_x2", "memory on x2", "gunicorn", workers=2, jobs_worker=True),
        ]
    return out


# Where runs (POST .../runs) are measured: in one process, and across two, whose streams are woken by
# each other's runs only through the database.
RUNS_ON = (DEPLOYED, "gunicorn_x2")


def phase_names(server: Server, plan: load.Plan) -> list[str]:
    names = ["warmup", "chat", "stream"]
    if server.name == DEPLOYED:
        names += ["long_thread", "soak"]
    names += [f"users_{n}" for n in plan.levels]
    if server.name in RUNS_ON:
        names.append(f"runs_{plan.run_users}")
    if server.name == DEPLOYED:
        names += ["open_streams", "memory_retrieval"]
    return names


def chosen(name: str, only: list[str]) -> bool:
    """`--only` keeps the phases whose names start with one of its words (and the warm-up)."""
    return not only or name == "warmup" or any(name.startswith(word) for word in only)


async def run(svc: Services, plan: load.Plan, res: dict[str, Any], only: list[str]) -> None:
    """Fills `res` server by server and phase by phase, so that an interrupted run still reports."""
    progress("calibration: the fake LLM alone")
    res["calibration"] = cal = await load.calibrate(svc.llm_url, plan)
    fake_ms = cal["plain_ms"]["p50"] or plan.call_ms
    fake_ttft_ms = cal["ttft_ms"]["p50"] or plan.fake_ttft_ms
    accounts: list[User] = []  # the app's, registered once (bcrypt at 12 rounds) and kept across restarts
    for server in servers(plan, svc.llm_url):
        if not any(chosen(name, only) for name in phase_names(server, plan) if name != "warmup"):
            continue
        out: dict[str, Any] = {"label": server.label}
        res[server.name] = out
        progress(f"{server.name}: starting")
        try:
            out["startup_s"] = svc.start_server(server)
            async with Client(
                partial(_http, svc.url), floor=not server.app, reply_words=plan.reply_words
            ) as client:
                await measure(svc, plan, server, out, accounts, client, fake_ms, fake_ttft_ms, only)
        except Exception as exc:  # one failed server should not hide the others
            out["failed"] = f"{type(exc).__name__}: {exc}"
            progress(f"{server.name} failed: {out['failed']}\n{tail(svc.log, 10)}")
        finally:
            svc.stop_server()


async def measure(
    svc: Services,
    plan: load.Plan,
    server: Server,
    out: dict[str, Any],
    accounts: list[User],
    client: Client,
    fake_ms: float,
    fake_ttft_ms: float,
    only: list[str],
) -> None:
    assert svc.server is not None
    out["error_samples"] = client.error_samples
    app_dir = svc.data_dir if server.app else None
    metrics = client.http if server.app else None
    fake = svc.llm.pid if svc.llm else None
    probe = Probe(svc.server_pids, http=metrics, data_dir=app_dir, memory=server.memory, fake_pid=fake)
    if server.app:
        if not accounts:
            progress(f"{plan.users} accounts (bcrypt, 12 rounds)")
            t0 = time.perf_counter()
            accounts += await client.new_users(plan.users)
            out["accounts_s"] = time.perf_counter() - t0
        await client.renew(accounts)
        users = accounts
    else:
        users = await client.new_users(plan.users)
    lv = users[3:]
    every: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "warmup": partial(load.warmup, client, lv[0], plan),
        "chat": partial(load.sequential, client, users[0], plan, probe, stream=False, fake_ms=fake_ms),
        "stream": partial(load.sequential, client, users[1], plan, probe, stream=True, fake_ms=fake_ttft_ms),
        "long_thread": partial(load.long_thread, client, users[2], plan),
        "soak": partial(load.soak, client, lv[: plan.soak_users], plan, probe),
        **{f"users_{n}": partial(load.concurrent, client, lv[:n], plan, probe) for n in plan.levels},
        f"runs_{plan.run_users}": partial(runs.background, client, lv[: plan.run_users], plan, probe),
        "open_streams": partial(runs.open_streams, client, lv, plan, probe),
        "memory_retrieval": partial(
            memory.retrieval,
            svc.data_dir,
            per_user=plan.memory_per_user,
            users=plan.memory_users,
            rounds=plan.memory_rounds,
        ),
    }
    phases = {name: every[name] for name in phase_names(server, plan) if chosen(name, only)}
    for name, phase in phases.items():
        svc.check_alive()
        progress(f"{server.name}: {name}")
        t0 = time.perf_counter()
        try:
            out[name] = await phase()
        except Exception as exc:  # one failed phase should not hide the others
            out[name] = {"failed": f"{type(exc).__name__}: {exc}"}
            progress(f"{name} failed: {out[name]['failed']}")
        out[name]["phase_s"] = time.perf_counter() - t0
    jobs = await probe.jobs()
    if server.memory and jobs is not None and jobs.queued + jobs.running > 0:
        out["jobs_purged"] = await memory.purge_jobs(svc.data_dir)


def _http(url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    timeout = httpx.Timeout(60.0, connect=10.0)
    # Plain HTTP on loopback: verify=False spares each client loading the CA bundle (~20 ms of CPU).
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout, trust_env=False, verify=False)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a few minutes instead of ~15")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="PHASE",
        help="only the phases whose names start so (e.g. runs open_streams), on the servers that have them",
    )
    args = parser.parse_args()
    plan = load.QUICK if args.quick else load.Plan()

    signal.signal(signal.SIGTERM, _interrupt)
    _raise_open_files(plan.open_streams * 2 + 1024)
    svc = Services(plan.latency_ms, plan.token_delay_ms, plan.reply_words)
    svc.pin_benchmark()
    res: dict[str, Any] = {"pinning": svc.pinning.describe()}
    rc = 0
    t0 = time.perf_counter()
    try:
        progress(f"starting the fake LLM (logs in {svc.tmp})")
        svc.start_fake()
        asyncio.run(asyncio.wait_for(run(svc, plan, res, args.only), 600 if args.quick else 1500))
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping the services", file=sys.stderr)
        rc = 130
    except Exception as exc:  # report what was measured, then fail
        print(f"bench: failed: {type(exc).__name__}: {exc}\n{tail(svc.log)}", file=sys.stderr)
        rc = 1
    finally:
        # A second Ctrl-C or SIGTERM must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        troubled = rc != 0 or _troubled(res)
        svc.stop(keep_logs=troubled)
    if troubled:
        print(f"bench: logs kept in {svc.tmp}", file=sys.stderr)

    res["total_s"] = total = time.perf_counter() - t0
    checks = evaluate(res, plan)
    print(render(res, plan, checks))
    if args.json:
        doc = {"quick": args.quick, "plan": asdict(plan), "results": res, "targets": checks, "total_s": total}
        Path(args.json).write_text(json.dumps(doc, indent=2))
        print(f"   wrote {args.json}")
    return rc or int(any(c["pass"] is not True for c in checks))


def _raise_open_files(wanted: int) -> None:
    """Each held stream is a socket here and one in the server, which inherits this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, top), hard))


def _troubled(res: dict[str, Any]) -> bool:
    servers = [v for v in res.values() if isinstance(v, dict) and "label" in v]
    phases = [p for s in servers for p in s.values() if isinstance(p, dict)]
    return any("failed" in d for d in [*servers, *phases]) or any(s.get("error_samples") for s in servers)


if __name__ == "__main__":
    sys.exit(main())
