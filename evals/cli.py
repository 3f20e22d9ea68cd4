"""`python -m evals run DATASET | traces | datasets [from-feedback]`: exit 0 if the gate passes, 1 if not,
2 on bad input."""

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.models import Rating
from evals import datasets, from_feedback, thresholds
from evals.commands import Common, run_dataset, run_traces
from evals.errors import EvalInputError
from evals.traces import TraceFilters

_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_CONCURRENCY = 64


def moment(text: str) -> datetime:
    """`90m`, `24h`, `7d` ago, or an ISO 8601 time (UTC when it names no zone)."""
    if match := _DURATION.match(text.strip()):
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a duration like 24h nor an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def concurrency(text: str) -> int:
    """Bounded like EVAL_CASE_CONCURRENCY."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_CONCURRENCY}")
    return int(text)


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        default="all",
        help="comma-separated metric names, or all / deterministic / judge (default: all)",
    )
    parser.add_argument("--thresholds", type=Path, default=thresholds.DEFAULT_PATH, help="gates (TOML)")
    parser.add_argument("--baseline", type=Path, help="an earlier report.json to compare with")
    parser.add_argument("--out", type=Path, help="directory for report.json and report.html")
    parser.add_argument(
        "--progress",
        choices=["auto", "on", "off"],
        default="auto",
        help="live progress bar on stderr (auto: on a terminal; off: one summary line per phase)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent on a dataset and score every turn")
    run.add_argument("dataset", help="a dataset name under evals/datasets (e.g. starter) or a .jsonl path")
    run.add_argument("--cases", help="only these case ids (comma-separated)")
    run.add_argument(
        "--concurrency",
        type=concurrency,
        help=f"cases run at once, 1 to {MAX_CONCURRENCY} (default EVAL_CASE_CONCURRENCY)",
    )
    _common_options(run)

    tr = sub.add_parser("traces", help="score recent Langfuse traces and write the scores back")
    tr.add_argument(
        "--since", type=moment, default="24h", help="start of the window: 24h, 90m, 7d or ISO time"
    )
    tr.add_argument("--until", type=moment, help="end of the window (default: when the run starts)")
    tr.add_argument("--limit", type=positive, default=50, help="at most this many traces (default 50)")
    tr.add_argument("--tag", action="append", default=[], help="only traces with this tag (repeatable)")
    tr.add_argument("--name", default="chat.turn", help="trace name (default chat.turn; '' for any)")
    tr.add_argument(
        "--unscored",
        action="store_true",
        help="only traces missing a score of these metrics, and only the missing scores",
    )
    tr.add_argument("--no-write", action="store_true", help="score without writing scores to Langfuse")
    _common_options(tr)

    ds = sub.add_parser("datasets", help="list the datasets under evals/datasets")
    ds_sub = ds.add_subparsers(dest="datasets_command")
    fb = ds_sub.add_parser(
        "from-feedback",
        help="write the turns users rated as a new dataset version, expectations left for review",
    )
    fb.add_argument("--since", type=moment, default="7d", help="rated since: 7d, 24h, 90m or ISO time")
    fb.add_argument("--rating", choices=["up", "down", "any"], default="down", help="default down")
    fb.add_argument("--out", default="feedback", help="dataset name (default feedback): NAME.vN.jsonl")
    fb.add_argument("--limit", type=positive, default=500, help="at most this many cases (default 500)")
    return parser


def _from_feedback(args: argparse.Namespace) -> int:
    rating = None if args.rating == "any" else Rating(args.rating)
    path, count = asyncio.run(
        from_feedback.export(since=args.since, rating=rating, name=args.out, limit=args.limit)
    )
    if path is None:
        sys.stdout.write(f"No {args.rating} feedback since {args.since.isoformat()}: nothing written.\n")
    else:
        sys.stdout.write(f"Wrote {count} cases to {path}; write their expectations before gating on them.\n")
    return 0


def _common(args: argparse.Namespace) -> Common:
    return Common(
        metrics=args.metrics,
        thresholds=args.thresholds,
        baseline=args.baseline,
        out=args.out,
        progress={"auto": None, "on": True, "off": False}[args.progress],
    )


def _list_datasets() -> int:
    for name in sorted(datasets.available()):
        data = datasets.load(name)
        sys.stdout.write(f"{name} v{data.version}: {len(data.cases)} cases ({data.path.name})\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "datasets":
            return _from_feedback(args) if args.datasets_command else _list_datasets()
        if args.command == "run":
            common = _common(args)
            return run_dataset(args.dataset, concurrency=args.concurrency, cases=args.cases, common=common)
        # Pinned, so that traces arriving while the pages are read cannot shift them.
        until = args.until or datetime.now(UTC)
        if args.since >= until:
            raise EvalInputError(
                f"--since ({args.since.isoformat()}) is not before --until ({until.isoformat()})"
            )
        filters = TraceFilters(
            since=args.since,
            until=until,
            limit=args.limit,
            name=args.name or None,
            tags=args.tag,
            unscored=args.unscored,
        )
        return run_traces(filters, write_back=not args.no_write, common=_common(args))
    except EvalInputError as exc:
        sys.stderr.write(f"python -m evals: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
