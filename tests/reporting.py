"""Numbers a test measured, printed in pytest's summary (recall@3, generated cases, ...)."""

REPORTED: dict[str, str] = {}


def report(name: str, value: object) -> None:
    REPORTED[name] = str(value)
