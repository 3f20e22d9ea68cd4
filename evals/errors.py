"""The one error the CLI turns into a message and exit code 2: the input, not the agent, is wrong."""


class EvalInputError(Exception):
    """A missing or malformed dataset, thresholds file, baseline or setting."""
