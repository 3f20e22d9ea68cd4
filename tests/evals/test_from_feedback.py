"""`python -m evals datasets from-feedback`: rated turns become a new dataset version to review."""

import asyncio
import json

import pytest
from sqlalchemy import text

from evals import datasets
from evals.cli import main
from evals.from_feedback import REVIEW_MARK
from tests.conftest import auth, new_session, register


async def rated_turn(client, user, message: str, rating: str, comment: str | None = None) -> int:
    sid = await new_session(client, user)
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text
    reply = r.json()["message_id"]
    r = await client.put(
        f"/api/v1/sessions/{sid}/messages/{reply}/feedback",
        json={"rating": rating, "comment": comment},
        headers=auth(user),
    )
    assert r.status_code == 200, r.text
    return int(reply)


@pytest.fixture
def datasets_dir(eval_env, monkeypatch, pg_url):
    monkeypatch.setenv("DATABASE_URL", pg_url)  # the service's database: where the feedback is
    directory = eval_env / "datasets"
    monkeypatch.setattr(datasets, "DATASETS_DIR", directory)
    return directory


async def export(capsys, *args: str) -> tuple[int, str]:
    code = await asyncio.to_thread(main, ["datasets", "from-feedback", *args])
    return code, capsys.readouterr().out


async def test_rated_turns_become_a_new_dataset_version(app, client, datasets_dir, capsys):
    user = await register(client)
    down = await rated_turn(client, user, "Book me a table\nfor two", "down", "It did not book anything")
    bare = await rated_turn(client, user, "Tell me a joke", "down")
    up = await rated_turn(client, user, "thanks!", "up", "great")
    old = await rated_turn(client, user, "an old complaint", "down", "old")
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE feedback SET updated_at = now() - interval '10 days' WHERE message_id = :m"),
            {"m": old},
        )

    code, out = await export(capsys, "--since", "7d", "--rating", "down", "--out", "from-users")
    assert code == 0, out
    path = datasets_dir / "from-users.v1.jsonl"
    assert str(path) in out
    loaded = datasets.load(str(path))  # what the loader (and `python -m evals run`) accepts
    assert (loaded.name, loaded.version) == ("from-users", 1)
    cases = {c.id: c for c in loaded.cases}
    # Other tests' ratings share this database: look at this user's only.
    assert f"feedback-{down}" in cases and f"feedback-{bare}" in cases
    assert f"feedback-{up}" not in cases and f"feedback-{old}" not in cases
    case = cases[f"feedback-{down}"]
    assert case.category == "multi_turn"
    assert [t.user for t in case.turns] == ["Book me a table\nfor two"]
    assert case.turns[0].expect == datasets.Expect()  # nothing checked until a person writes it
    assert case.description.startswith(f"{REVIEW_MARK} Rated down on ")
    assert "Comment: It did not book anything" in case.description
    assert json.dumps("Echo: Book me a table\nfor two") in case.description
    assert "No comment." in cases[f"feedback-{bare}"].description

    # Again: a new version beside the first, never over it; "any" takes both ratings.
    code, out = await export(capsys, "--since", "1h", "--rating", "any", "--out", "from-users")
    assert code == 0, out
    second = datasets.load("from-users")  # the newest version by name
    assert second.version == 2 and f"feedback-{up}" in {c.id for c in second.cases}
    assert datasets.load(str(path)).sha256 == loaded.sha256


async def test_nothing_rated_writes_nothing(app, datasets_dir, capsys):
    code, out = await export(capsys, "--since", "2999-01-01T00:00:00", "--out", "empty")
    assert code == 0
    assert "No down feedback since 2999-01-01T00:00:00+00:00: nothing written." in out
    assert not list(datasets_dir.glob("empty.*"))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--out", "../escape"], "--out '../escape'"),
        (["--rating", "meh"], "invalid choice"),
        (["--since", "soon"], "neither a duration"),
        (["--limit", "0"], "not a positive whole number"),
    ],
)
async def test_bad_options_are_one_line_and_exit_2(datasets_dir, capsys, args, error):
    try:
        code = await asyncio.to_thread(main, ["datasets", "from-feedback", *args])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert error in err and "Traceback" not in err
