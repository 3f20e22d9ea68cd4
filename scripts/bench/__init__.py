"""End-to-end benchmark of the chat service as deployed, against a bare floor app, on loopback only.

Run from the project root: `.venv/bin/python -m scripts.bench [--quick] [--json FILE] [--only PHASE...]`
(`make bench`; `--only runs open_streams` measures just those phases, on the servers that have them).
It starts `tests.fake_llm` (50 ms to the first token, 20 tokens 5 ms apart; a plain reply takes as long
as the stream), then one server after another, and always stops them:
- the floor (scripts/bench/floor.py: the same one LLM call per turn, nothing else);
- the app in its production configuration (APP_ENV=production, embedded PostgreSQL, memory on with the
  in-process embedder and LLM extraction, limits on with ceilings never reached, bcrypt at 12 rounds),
  then with extraction off, memory off, and a remote embedder;
- with two CPUs or more, these run on one CPU and the benchmark and the fake on another; then, on both
  CPUs, the app as docker-compose.yml runs it (gunicorn, 2 workers, memory jobs in one
  `python -m app.worker`) and the floor with 2 workers.
The deployed configuration (and gunicorn's) also runs turns as background runs (POST .../runs, then
the run's stream to `done`) at 50 users, and, memory on only, holds 1,000 run streams open at once
over 200 runs (scripts/bench/runs.py): the server's RSS, each stream's first event, the database's
statements a second.
Overhead is a latency minus the fake's own, measured alone through the OpenAI client. CPU per turn is
read from /proc for every server process, once the turns' memory jobs have run; the embedded
PostgreSQL's is shown apart. Targets are judged on the deployed configuration; any miss exits 1.
"""
