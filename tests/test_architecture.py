"""Imports run api -> services -> agent -> repositories -> models (read with `ast`); import is inert."""

import ast
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = PROJECT_ROOT / "app"

# app.runtime is the container a process builds once: services use it, it knows only the agent below.
RANK = {"models": 0, "repositories": 1, "agent": 2, "runtime": 3, "services": 4, "api": 5}
LAYERS = {f"app.{layer}": layer for layer in [*RANK, "schemas"]}
# Shared infrastructure, usable from any layer, so it must not depend on one.
INFRASTRUCTURE = {"app.config", "app.db", "app.errors", "app.observability"}
# Free: app.main and app.worker (the composition roots) may import anything.
WEB_FRAMEWORKS = {"fastapi", "starlette"}
NO_WEB = {"runtime", "services", "agent", "repositories", "models", "schemas", "infrastructure"}
NO_LANGCHAIN = {"repositories", "models"}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the project, for messages
    line: int
    importer: str
    imported: str  # absolute dotted name


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return layer
    if any(module == p or module.startswith(p + ".") for p in INFRASTRUCTURE):
        return "infrastructure"
    return None


def imports_of(tree: ast.AST, *, path: str, module: str, is_package: bool, known: set[str]) -> list[Import]:
    """Every import in the module, including those inside functions and `if TYPE_CHECKING:` blocks."""
    found: list[Import] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, module, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                # `from app.repositories import sessions` imports the submodule app.repositories.sessions.
                candidate = f"{base}.{alias.name}"
                found.append(Import(path, node.lineno, module, candidate if candidate in known else base))
    return found


def parse_app(root: Path = APP_DIR) -> list[Import]:
    files = sorted(root.rglob("*.py"))
    known = {module_name(f) for f in files}
    found: list[Import] = []
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        found += imports_of(
            tree,
            path=str(file.relative_to(PROJECT_ROOT)),
            module=module_name(file),
            is_package=file.name == "__init__.py",
            known=known,
        )
    return found


def violations(imports: list[Import]) -> list[str]:
    problems: list[str] = []
    for imp in imports:
        source, target = layer_of(imp.importer), layer_of(imp.imported)
        top = imp.imported.split(".")[0]
        why = None
        if source in RANK and target in RANK and RANK[target] > RANK[source]:
            why = f"{source} must not import {target} (a layer above it)"
        elif target == "schemas" and source not in (None, "api", "schemas"):
            why = f"only api may import schemas, not {source}"
        elif source == "schemas" and target in RANK and target != "models":
            why = f"schemas must not import {target}"
        elif source == "infrastructure" and target is not None and target != "infrastructure":
            why = f"shared infrastructure must not import the {target} layer"
        elif source in NO_WEB and top in WEB_FRAMEWORKS:
            why = f"{source} must not import {top} (HTTP belongs to api)"
        elif source in NO_LANGCHAIN and (top.startswith("langchain") or top.startswith("langgraph")):
            why = f"{source} must not import {top}"
        if why:
            problems.append(f"{imp.path}:{imp.line}: {imp.importer} imports {imp.imported}: {why}")
    return problems


def check(module: str, source: str) -> list[str]:
    """Violations for one synthetic module (used to test the checker itself)."""
    tree = ast.parse(source)
    path = module.replace(".", "/") + ".py"
    return violations(imports_of(tree, path=path, module=module, is_package=False, known=set()))


# --- the real tree


def test_imports_follow_the_dependency_direction():
    problems = violations(parse_app())
    assert not problems, "imports that run the wrong way:\n  " + "\n  ".join(problems)


def test_the_checker_sees_the_real_imports():
    # Guard against a checker that silently finds nothing (wrong root, wrong module names).
    imports = parse_app()
    edges = {(i.importer, i.imported) for i in imports}
    assert ("app.services.chat.leases", "app.repositories.leases") in edges
    assert ("app.services.chat.turn", "app.runtime") in edges
    assert ("app.agent.tools.sessions", "app.repositories.sessions") in edges
    assert ("app.api.v1.sessions", "app.schemas.sessions") in edges
    importers = {i.importer for i in imports}
    for layer in [*LAYERS, "app.main"]:
        assert any(m == layer or m.startswith(layer + ".") for m in importers), layer


# --- the checker itself


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("app.services.chat", "from app.api.deps import CurrentUser", "services must not import api"),
        ("app.agent.nodes", "import app.services.chat", "agent must not import services"),
        (
            "app.repositories.users",
            "from app.agent.state import Context",
            "repositories must not import agent",
        ),
        ("app.models.user", "from app.repositories import users", "models must not import repositories"),
        ("app.services.auth", "from app.schemas.auth import UserRead", "only api may import schemas"),
        ("app.agent.llm", "from app.schemas import chat", "only api may import schemas"),
        ("app.schemas.chat", "from app.services import chat", "schemas must not import services"),
        ("app.services.chat", "from fastapi import HTTPException", "must not import fastapi"),
        ("app.agent.graph", "import starlette.requests", "must not import starlette"),
        ("app.errors", "from fastapi import status", "must not import fastapi"),
        ("app.config", "from app.models import User", "shared infrastructure must not import"),
        ("app.repositories.messages", "from langchain_core.messages import AIMessage", "langchain_core"),
        ("app.models.chat", "import langgraph", "models must not import langgraph"),
        ("app.services.chat", "def f():\n    from app.api import deps\n", "services must not import api"),
        ("app.services.chat", "from ..api import deps", "services must not import api"),
    ],
)
def test_checker_flags_upward_imports(module, source, expected):
    problems = check(module, source)
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith(module.replace(".", "/") + ".py:")


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("app.api.v1.chat", "from app.services import chat\nfrom app.schemas.chat import ChatRequest"),
        ("app.api.deps", "from fastapi import Depends\nfrom app.models import User"),
        ("app.services.chat", "from app.agent.state import Context\nfrom app.models import Message"),
        ("app.services.chat", "from app.config import Settings\nfrom app.errors import AppError"),
        (
            "app.agent.tools.sessions",
            "from app.repositories import sessions\nfrom langgraph.prebuilt import X",
        ),
        ("app.repositories.users", "from app.models import User\nfrom sqlmodel import select"),
        ("app.schemas.auth", "from app.schemas.common import CleanStr\nfrom pydantic import BaseModel"),
        ("app.main", "from app.api.v1 import api_router\nfrom fastapi import FastAPI"),
        ("app.db", "from app.config import Settings"),
        ("app.services.sessions", "from . import isolated"),
    ],
)
def test_checker_allows_downward_imports(module, source):
    assert check(module, source) == []


def test_failure_message_names_file_and_line():
    problems = check("app.services.chat", "import uuid\n\nfrom app.api.deps import CurrentUser\n")
    assert problems == [
        "app/services/chat.py:3: app.services.chat imports app.api.deps: services must not import api "
        "(a layer above it)"
    ]


# --- import time


def _closed_port_env() -> dict[str, str]:
    port = free_port()  # bound and released: nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_") and k != "OPENAI_API_KEY"}
    env.update(
        APP_ENV="test",
        DATABASE_URL=f"postgresql://nobody:nothing@127.0.0.1:{port}/nowhere",
        LLM_BASE_URL=f"http://127.0.0.1:{port}/v1",
        PYTHONPATH=str(PROJECT_ROOT),
    )
    return env


# Refuse (and report) any Python-level connection or child process (the embedded PostgreSQL) while the
# module is imported. psycopg connects through libpq, below `socket`; DATABASE_URL pointing at a closed
# port covers that: a connection attempt there fails the import.
_GUARD = """
import socket, subprocess, sys
attempts = []
def refuse(what):
    def guard(*args, **kwargs):
        attempts.append(what)
        raise OSError(f"{what} at import time")
    return guard
socket.socket.connect = refuse("socket.connect")
socket.socket.connect_ex = refuse("socket.connect_ex")
socket.create_connection = refuse("socket.create_connection")
subprocess.Popen.__init__ = refuse("subprocess.Popen")
"""


def _run(code: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=PROJECT_ROOT,
            env=_closed_port_env(),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{code.splitlines()[-1]!r} did not finish within 10 s: something waits on a connection")
    return done, time.monotonic() - started


def test_importing_the_app_connects_to_nothing():
    done, elapsed = _run("import app.main")
    assert done.returncode == 0, done.stderr
    assert elapsed < 10


def test_importing_the_app_opens_no_socket_and_starts_no_process():
    done, elapsed = _run(_GUARD + "import app.main\nprint(attempts)\nsys.exit(1 if attempts else 0)")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[]"
    assert elapsed < 10


def test_the_guard_notices_a_connection():
    done, _ = _run(
        _GUARD + "try:\n    socket.create_connection(('127.0.0.1', 9))\nexcept OSError:\n    pass\n"
        "sys.exit(1 if attempts else 0)"
    )
    assert done.returncode == 1, done.stdout + done.stderr


def test_create_app_builds_without_connecting():
    # The lifespan, not create_app(), opens the database and the LLM client.
    code = _GUARD + (
        "from app.main import create_app\n"
        "app = create_app()\n"
        "assert app.routes\n"
        "print(attempts)\n"
        "sys.exit(1 if attempts else 0)"
    )
    done, elapsed = _run(code)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("[]")
    assert elapsed < 10
