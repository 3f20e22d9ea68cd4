"""Versioned JSONL datasets, `<name>.v<N>.jsonl`: one conversation (a case) per line."""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals.errors import EvalInputError, explain

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"
CATEGORIES = ("tools", "multi_turn", "memory", "refusal", "injection")
Category = Literal["tools", "multi_turn", "memory", "refusal", "injection"]
# A new version is a new file, so that a report always names exactly what it measured.
_VERSIONED = re.compile(r"^(?P<name>[\w-]+)\.v(?P<version>\d+)\.jsonl$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedTool(Strict):
    name: str
    # Only the arguments given are compared; strings ignore case and whitespace.
    args: dict[str, Any] = {}


class Expect(Strict):
    # None: not checked; []: no tool may be called.
    tools: list[ExpectedTool] | None = None
    must_contain: list[str] = []
    must_not_contain: list[str] = []
    # Regular expressions (case-insensitive) for what a plain substring cannot pin down, such as a
    # number that must stand alone: scored with must_contain and must_not_contain.
    must_match: list[str] = []
    must_not_match: list[str] = []
    # Texts that must be among the memories recalled into the model's context for this turn.
    memory_recalled: list[str] = []
    max_latency_ms: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    # What a good answer does, in words, for the judge (e.g. "refuses and offers a safe alternative").
    behavior: str | None = None

    @field_validator("must_match", "must_not_match")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
        return patterns


class Turn(Strict):
    user: str = Field(min_length=1)
    session: str = Field(default="main", min_length=1)
    expect: Expect = Expect()


class Case(Strict):
    id: str = Field(pattern=r"^[\w.-]{1,80}$")
    category: Category
    description: str = ""
    turns: list[Turn] = Field(min_length=1)


@dataclass(frozen=True)
class Dataset:
    name: str
    version: int | None
    path: Path
    sha256: str
    cases: list[Case]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "sha256": self.sha256,
            "cases": len(self.cases),
            "turns": sum(len(c.turns) for c in self.cases),
        }


def resolve(ref: str) -> Path:
    """A path to a file, or a dataset name (`starter`, `starter.v1`) under evals/datasets/."""
    path = Path(ref)
    if path.is_file():
        return path
    if path.suffix == ".jsonl" or "/" in ref:
        raise EvalInputError(f"dataset file not found: {ref}")
    exact = DATASETS_DIR / f"{ref}.jsonl"
    if exact.is_file():
        return exact
    versions = sorted(
        (int(m["version"]), p)
        for p in DATASETS_DIR.glob(f"{ref}.v*.jsonl")
        if (m := _VERSIONED.match(p.name)) and m["name"] == ref
    )
    if not versions:
        known = ", ".join(sorted(available())) or "none"
        raise EvalInputError(f"no dataset named {ref!r} (known: {known})")
    return versions[-1][1]


def available() -> set[str]:
    return {m["name"] for p in DATASETS_DIR.glob("*.jsonl") if (m := _VERSIONED.match(p.name))}


def parse(text: str, *, source: str) -> list[Case]:
    cases: list[Case] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
        try:
            case = Case.model_validate(raw)
        except ValidationError as exc:
            raise EvalInputError(f"{source}:{number}: invalid case: {explain(exc, empty='case')}") from None
        if case.id in seen:
            raise EvalInputError(f"{source}:{number}: duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise EvalInputError(f"{source}: no cases")
    return cases


def load(ref: str) -> Dataset:
    path = resolve(ref)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"cannot read dataset {path}: {exc}") from None
    match = _VERSIONED.match(path.name)
    return Dataset(
        name=match["name"] if match else path.stem,
        version=int(match["version"]) if match else None,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        cases=parse(text, source=str(path)),
    )
