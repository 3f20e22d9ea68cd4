"""Evals: run the agent on datasets or score recent Langfuse traces, then gate on the results."""
