"""The shipped datasets and thresholds load and validate."""

from collections import Counter

import pytest

from evals import datasets, thresholds
from evals.cli import main
from evals.errors import EvalInputError
from evals.metrics import ALL


def test_the_starter_dataset_covers_every_category():
    starter = datasets.load("starter")
    assert starter.path.name.startswith("starter.v") and starter.version is not None
    assert len(starter.cases) >= 40
    counts = Counter(c.category for c in starter.cases)
    assert set(counts) == set(datasets.CATEGORIES)
    assert min(counts.values()) >= 5
    turns = [t for c in starter.cases for t in c.turns]
    assert any(t.expect.tools for t in turns) and any(t.expect.tools == [] for t in turns)
    assert any(len(c.turns) >= 3 for c in starter.cases if c.category == "multi_turn")
    # Cross-session memory: said in one session, expected back in another.
    for case in (c for c in starter.cases if c.category == "memory" and len(c.turns) > 1):
        assert case.turns[0].session != case.turns[-1].session
        assert case.turns[-1].expect.memory_recalled or case.turns[-1].expect.tools
    injections = [t for c in starter.cases if c.category == "injection" for t in c.turns]
    assert all(t.expect.must_not_contain or t.expect.behavior for t in injections)


def _deterministic(expect: datasets.Expect) -> bool:
    e = expect
    return bool(
        e.tools is not None or e.must_contain or e.must_not_contain or e.must_match or e.must_not_match
    )


def test_the_starter_expectations_are_not_met_by_chance():
    starter = datasets.load("starter")
    # A number as a plain substring is found inside other numbers ("8" in "18"): numbers are patterns.
    texts = [w for c in starter.cases for t in c.turns for w in t.expect.must_contain]
    assert not [w for w in texts if w.replace(".", "").isdigit()], texts
    # A refusal is judged, but also checked: no tool, or none of the content it must not give.
    for case in (c for c in starter.cases if c.category == "refusal"):
        assert _deterministic(case.turns[-1].expect), case.id


def test_a_pattern_that_is_no_regular_expression_is_refused():
    line = (
        '{"id": "x", "category": "tools", "turns": [{"user": "hi", "expect": {"must_match": ["(unclosed"]}}]}'
    )
    with pytest.raises(
        EvalInputError, match=r"x:1: invalid case: turns.0.expect.must_match: .*not a regular"
    ):
        datasets.parse(line, source="x")


def test_a_dataset_is_found_by_name_and_version(tmp_path, monkeypatch):
    for version in (1, 2, 10):
        (tmp_path / f"demo.v{version}.jsonl").write_text(
            f'{{"id": "c{version}", "category": "tools", "turns": [{{"user": "hi"}}]}}\n'
        )
    monkeypatch.setattr(datasets, "DATASETS_DIR", tmp_path)
    assert datasets.load("demo").version == 10
    assert datasets.load("demo.v2").cases[0].id == "c2"
    assert datasets.available() == {"demo"}
    with pytest.raises(EvalInputError, match="no dataset named 'other'"):
        datasets.load("other")


def test_duplicate_ids_and_empty_files_are_refused():
    line = '{"id": "same", "category": "refusal", "turns": [{"user": "hi"}]}'
    with pytest.raises(EvalInputError, match=r"x:2: duplicate case id 'same'"):
        datasets.parse(f"{line}\n{line}\n", source="x")
    with pytest.raises(EvalInputError, match="no cases"):
        datasets.parse("\n\n", source="x")


def test_the_shipped_thresholds_are_valid():
    limits = thresholds.load(thresholds.DEFAULT_PATH, ALL)
    assert set(limits.metrics) <= set(ALL)
    for name, gate in limits.metrics.items():
        if not ALL[name].higher_is_better:
            assert gate.min_mean is None, f"{name} is lower-is-better: gate it with max_mean"


def test_the_datasets_command_lists_them(capsys):
    assert main(["datasets"]) == 0
    assert "starter v2: 50 cases" in capsys.readouterr().out
