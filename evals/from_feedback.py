"""`python -m evals datasets from-feedback`: the turns users rated, as a new dataset version to review.

Reads the service's database (DATABASE_URL, or the embedded one under DATA_DIR, as the service
does), not the evals' own. Each case is one rated turn: the user's message as its only turn, the
rating, comment and the reply that was rated in its description, and no expectations: a person
writes them before the case gates anything (until then every check of the case is skipped, which the
loader accepts). Cases are "multi_turn" by category, the loader's catch-all for conversations.
"""

import json
import re
from datetime import datetime
from pathlib import Path

from app.config import load_settings
from app.db import open_database
from app.models import Rating
from app.repositories.feedback import RatedTurn
from app.services import feedback as feedback_service
from evals import datasets
from evals.errors import EvalInputError

REVIEW_MARK = "[needs review]"
_NAME = re.compile(r"^[\w-]{1,60}$")
_REPLY_CHARS = 500  # of the rated reply, quoted in the description


def next_path(name: str, directory: Path) -> Path:
    """`<name>.v<N+1>.jsonl` after the highest version there (v1 for a new name)."""
    if not _NAME.match(name):
        raise EvalInputError(f"--out {name!r}: use letters, digits, '_' or '-' (at most 60)")
    versions = [
        int(m["version"])
        for p in directory.glob(f"{name}.v*.jsonl")
        if (m := datasets._VERSIONED.match(p.name)) and m["name"] == name
    ]
    return directory / f"{name}.v{max(versions, default=0) + 1}.jsonl"


def to_case(turn: RatedTurn) -> datasets.Case:
    reply = turn.reply if len(turn.reply) <= _REPLY_CHARS else turn.reply[:_REPLY_CHARS] + "…"
    comment = f" Comment: {turn.comment}" if turn.comment else " No comment."
    return datasets.Case(
        id=f"feedback-{turn.message_id}",
        category="multi_turn",
        description=(
            f"{REVIEW_MARK} Rated {turn.rating} on {turn.rated_at.date().isoformat()}.{comment}"
            f" The reply rated: {json.dumps(reply, ensure_ascii=False)}"
        ),
        turns=[datasets.Turn(user=turn.user_text)],
    )


async def export(*, since: datetime, rating: Rating | None, name: str, limit: int) -> tuple[Path | None, int]:
    """Write the cases as a new version of dataset `name`; its path (None when nothing was rated:
    nothing is written) and how many cases."""
    path = next_path(name, datasets.DATASETS_DIR)
    settings = load_settings(log_level="ERROR", langfuse_tracing_enabled=False)
    async with open_database(settings) as database, database.sessions() as session:
        turns = await feedback_service.rated_turns(session, since=since, rating=rating, limit=limit)
    if not turns:
        return None, 0
    cases = [to_case(t) for t in turns]
    text = "".join(json.dumps(c.model_dump(exclude_defaults=True), ensure_ascii=False) + "\n" for c in cases)
    datasets.parse(text, source=str(path))  # what is written loads
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as out:  # never over an existing version
        out.write(text)
    return path, len(cases)
