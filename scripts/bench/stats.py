"""Percentiles, and readings of processes from /proc."""

import math
import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float | None:
    """Percentile with linear interpolation (q in 0..100); None without data."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float | None]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values, default=None),
    }


def _stat(pid: int) -> tuple[int, str, float] | None:
    """Parent pid, command name, and CPU seconds of a process with its waited-for children; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = stat.rpartition(")")  # the command name may contain spaces
    fields = rest.split()
    # utime, stime, cutime, cstime: a child that exited (a backend, a worker) stays counted in its parent.
    cpu = sum(int(f) for f in fields[11:15]) / CLK_TCK
    return int(fields[1]), head.partition("(")[2], cpu


def _processes() -> dict[int, tuple[int, str, float]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            out[int(entry.name)] = st
    return out


def tree_cpu(roots: list[int], skip_comm: str | None = None) -> float:
    """CPU seconds of these processes and all their descendants (threads included), except any whose
    command is `skip_comm` and what hangs below it."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, [r for r in roots if r in procs], set()
    while todo:
        pid = todo.pop()
        if pid in seen or (skip_comm is not None and procs[pid][1] == skip_comm and pid not in roots):
            continue
        seen.add(pid)
        total += procs[pid][2]
        todo.extend(children.get(pid, []))
    return total


def memory_and_threads(pid: int) -> dict[str, float | None]:
    out: dict[str, float | None] = {"rss_mb": None, "threads": None}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        if line.startswith("VmRSS:"):
            out["rss_mb"] = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            out["threads"] = int(line.split()[1])
    return out
