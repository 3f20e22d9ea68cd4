"""What the benchmark's users say: 12 to 20 words, different every turn; one turn in four tells a fact.

Deterministic per (user, turn), so every configuration gets the same conversation. A fact is written
`[remember:...]`, which the fake LLM's extraction returns as a memory: users accumulate memories as they
talk, and recall has real rows to search.
"""

import random

_WORDS = (
    "could",
    "you",
    "help",
    "me",
    "plan",
    "a",
    "quiet",
    "weekend",
    "near",
    "the",
    "coast",
    "with",
    "good",
    "walks",
    "and",
    "a",
    "small",
    "bakery",
    "my",
    "sister",
    "wants",
    "to",
    "visit",
    "before",
    "the",
    "summer",
    "crowds",
    "arrive",
    "because",
    "last",
    "time",
    "we",
    "waited",
    "hours",
    "for",
    "a",
    "table",
    "and",
    "the",
    "trains",
    "were",
    "late",
    "again",
    "so",
    "maybe",
    "we",
    "should",
    "drive",
    "instead",
    "or",
    "take",
    "the",
    "early",
    "bus",
    "which",
    "leaves",
    "from",
    "the",
    "square",
)
_VERBS = ("keep", "grow", "collect", "repair", "paint", "photograph", "feed", "sketch")
_THINGS = (
    "bees",
    "tomatoes",
    "old radios",
    "bonsai trees",
    "vintage bicycles",
    "orchids",
    "chickens",
    "kites",
)
_PLACES = (
    "on the roof of my flat",
    "in my back garden",
    "at my allotment",
    "in the spare bedroom",
    "at my parents' farm",
    "in a shed by the river",
)


def fact(rng: random.Random) -> str:
    return f"I {rng.choice(_VERBS)} {rng.choice(_THINGS)} {rng.choice(_PLACES)}"


def message(user: int, turn: int) -> str:
    """The user's message at this turn: 12 to 20 words, with a fact when `turn % 4 == 3`."""
    rng = random.Random(user * 1_000_003 + turn)
    count = rng.randint(12, 20)
    told = f"[remember:{fact(rng)}]".split() if turn % 4 == 3 else []
    start = rng.randrange(len(_WORDS))
    filler = [_WORDS[(start + i * rng.randint(1, 5)) % len(_WORDS)] for i in range(count - len(told))]
    return " ".join([*told, *filler])
