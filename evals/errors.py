"""The one error the CLI turns into a message and exit code 2: the input, not the agent, is wrong."""

from pydantic import ValidationError


class EvalInputError(Exception):
    """A missing or malformed dataset, thresholds file, baseline or setting."""


def explain(exc: ValidationError, *, empty: str = "value") -> str:
    """Every problem pydantic found, as `field.path: message`, joined with `; `."""
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or empty}: {e['msg']}" for e in exc.errors())
