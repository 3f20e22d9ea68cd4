"""End-to-end benchmark of the chat service against the fake LLM, on loopback only.

Run from the project root: `.venv/bin/python -m scripts.bench [--quick] [--json FILE]`.
It starts `tests.fake_llm` (a fixed latency, so whatever is above it is the platform's own cost) and the app
(uvicorn, embedded PostgreSQL in a temp dir under /tmp), measures, and always stops both.
Overhead is the app's latency minus the fake's own, measured alone through the OpenAI client ("calibrated");
minus the configured latency ("nominal") is shown too. Targets are judged on calibrated overheads.
"""
