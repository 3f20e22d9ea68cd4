"""The deployment files agree with each other, with the repository and with the app's Settings."""

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
MAIN = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
LANGFUSE = yaml.safe_load((ROOT / "docker-compose.langfuse.yml").read_text())
# `$${X}` is a literal dollar for the container's shell, not an interpolation.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_]\w*)")
SECRET_WORDS = {"PASSWORD", "SECRET", "KEY", "SALT", "AUTH", "TOKEN"}
# The whole value is one reference that either fails when unset or defaults to nothing.
SECRET_REFERENCE = re.compile(r"\$\{[A-Z_]\w*(:\?[^}]*|:-)\}")
# A URL's user and password, either of which may itself be a ${...} reference.
URL_PASSWORD = re.compile(r"://(?:\$\{[^}]*\}|[^:/@\s$])+:((?:\$\{[^}]*\}|[^@\s$])*)@")
# Read by gunicorn (app/gunicorn_conf.py), not by Settings.
SERVER_VARIABLES = {"WEB_CONCURRENCY"}
# Tracing settings are being added beside these files. Until Settings has a field with one of these
# prefixes, compose may name variables under it that the app does not read yet; from then on each
# must be a real field, which catches a name that drifted (LANGFUSE_HOST against a LANGFUSE_BASE_URL).
PENDING_PREFIXES = ("LANGFUSE_", "MEMORY_")


def strings(node: Any) -> list[str]:
    """Every key and value in a parsed file (comments are gone, anchors resolved)."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(doc["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


# A release: at least major.minor (`17.5`, `v3.5.0`, `0.8.0-pg17`), or MinIO's dated release names.
# `17`, `pg17`, `3` and `latest` move to new releases under the same name.
RELEASE_TAG = re.compile(r"v?\d+\.\d+([.-][\w.-]*)?|RELEASE\.\d{4}-\d{2}-\d{2}T[\w-]+")


def pinned(image: str) -> bool:
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and RELEASE_TAG.fullmatch(tag) is not None


def literal_secrets(doc: dict[str, Any]) -> list[str]:
    found = []
    for name, service in services(doc).items():
        for key, value in environment(service).items():
            # An access key id is the user-name half of a pair, not a secret.
            words = key.split("_")
            secret = bool(SECRET_WORDS & set(words)) and words[-1] != "ID"
            if secret and not SECRET_REFERENCE.fullmatch(value):
                found.append(f"{name}.{key}")
            for password in URL_PASSWORD.findall(value):
                if not SECRET_REFERENCE.fullmatch(password):
                    found.append(f"{name}.{key} (URL password)")
    return found


def settings_variables() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        if isinstance(field.validation_alias, AliasChoices):
            names |= {c.upper() for c in field.validation_alias.choices if isinstance(c, str)}
    return names


def unread_variables(names: set[str], known: set[str]) -> set[str]:
    def pending(name: str) -> bool:
        prefix = next((p for p in PENDING_PREFIXES if name.startswith(p)), None)
        return prefix is not None and not any(k.startswith(prefix) for k in known)

    return {n for n in names if n not in known | SERVER_VARIABLES and not pending(n)}


# --- services


def test_every_service_has_a_pinned_image_or_a_build():
    for name, service in {**services(MAIN), **services(LANGFUSE)}.items():
        if name in services(MAIN) and name in services(LANGFUSE):
            continue  # an override of the main file's service, merged into it
        assert "build" in service or pinned(service.get("image", "")), name


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("postgres:17.5", True),
        ("pgvector/pgvector:0.8.0-pg17", True),
        ("gcr.io/cadvisor/cadvisor:v0.49.1", True),
        ("minio/minio:RELEASE.2025-04-22T22-12-26Z", True),
        ("redis@sha256:" + "0" * 64, True),
        ("postgres:17", False),
        ("pgvector/pgvector:pg17", False),
        ("langfuse/langfuse:3", False),
        ("redis:latest", False),
        ("redis", False),
        ("localhost:5000/agent", False),
    ],
)
def test_the_pin_check_refuses_floating_tags(image, ok):
    assert pinned(image) is ok


def test_db_and_app_have_health_checks_and_the_app_waits_for_them():
    main = services(MAIN)
    for name in ("db", "app"):
        assert main[name]["healthcheck"]["test"], name
    assert main["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert main["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert main["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert environment(main["app"])["RUN_MIGRATIONS_ON_START"] == "false"


def test_langfuse_services_carry_the_profile_and_only_there():
    assert all("profiles" not in service for service in services(MAIN).values())
    for name, service in services(LANGFUSE).items():
        if name in services(MAIN):
            assert set(service) == {"environment"}, f"{name}: the override only adds environment"
        else:
            assert service["profiles"] == ["langfuse"], name


# --- secrets and variables


def test_no_secret_is_written_in_the_compose_files():
    assert literal_secrets(MAIN) == []
    assert literal_secrets(LANGFUSE) == []


@pytest.mark.parametrize(
    "env",
    [{"DB_PASSWORD": "hunter2"}, {"API_KEY": "${API_KEY:-sk-123}"}, {"URL": "postgresql://u:hunter2@db/x"}],
)
def test_the_secret_check_notices_a_literal(env):
    assert literal_secrets({"services": {"s": {"environment": env}}}) != []


def test_every_variable_is_in_the_example_env_file_and_nothing_else_is():
    used = {name for text in strings(MAIN) + strings(LANGFUSE) for name in VARIABLE.findall(text)}
    lines = (ROOT / ".env.compose.example").read_text().splitlines()
    listed = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert used == listed


def test_every_app_variable_is_a_setting():
    app_env = set(environment(services(MAIN)["app"])) | set(environment(services(LANGFUSE)["app"]))
    app_env |= set(environment(services(MAIN)["migrate"]))
    assert unread_variables(app_env, settings_variables()) == set()


def test_pending_names_are_checked_once_their_feature_exists():
    assert unread_variables({"LANGFUSE_HOST"}, {"DATABASE_URL"}) == set()
    assert unread_variables({"LANGFUSE_HOST"}, {"LANGFUSE_BASE_URL"}) == {"LANGFUSE_HOST"}
    assert unread_variables({"DATA_URL"}, {"DATABASE_URL"}) == {"DATA_URL"}


# --- mounted files, Prometheus, Grafana


def mounts(doc: dict[str, Any]) -> dict[str, str]:
    """Host path -> container path, for bind mounts from the repository."""
    found = {}
    for service in services(doc).values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                found[source] = target
    return found


def test_every_mounted_path_exists_in_the_repository():
    assert mounts(MAIN), "the checker found no mounts"
    for source in mounts(MAIN) | mounts(LANGFUSE):
        assert (ROOT / source).exists(), source


def test_prometheus_scrapes_the_app_cadvisor_and_itself():
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {t for job in jobs.values() for c in job["static_configs"] for t in c["targets"]}
    assert {"app:8000", "cadvisor:8080", "localhost:9090"} <= targets
    assert jobs["agent-platform"]["metrics_path"] == "/metrics"
    for target in targets:
        host = target.split(":")[0]
        assert host == "localhost" or host in services(MAIN), target


def test_grafana_provisions_prometheus_and_the_mounted_dashboards():
    provisioning = ROOT / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == mounts(MAIN)["./grafana/dashboards"]


# --- the image


def test_dockerfile_builds_in_stages_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and line[0].isupper()]
    by_name: dict[str, list[str]] = {}
    for name, *rest in instructions:
        by_name.setdefault(name, []).append(rest[0] if rest else "")
    assert len(by_name["FROM"]) >= 2
    assert by_name["USER"][-1] not in ("root", "0")
    assert "/api/v1/health" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert by_name["EXPOSE"] == ["8000"]
    assert "app/gunicorn_conf.py" in by_name["CMD"][-1]
    for args in by_name["COPY"]:
        if not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source


def test_the_build_context_leaves_out_secrets_and_local_state():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".env.*", ".git", ".venv", ".data"} <= ignored


# Settings whose default is None and which the app treats as off when empty: an unset variable that
# reaches them as "" changes nothing.
EMPTY_MEANS_OFF = {"LLM_API_KEY", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"}
# `${X}`, `${X-}` and `${X:-}`: an unset variable becomes an empty string.
MAY_BE_EMPTY = re.compile(r"(?<!\$)\$\{[A-Za-z_]\w*(:?-)?\}")


def blanked_settings(doc: dict[str, Any]) -> list[str]:
    """Settings of the app's services that an unset variable turns into "", overriding their default."""
    found = []
    for name in ("app", "migrate"):
        for key, value in environment(services(doc).get(name, {})).items():
            if key in settings_variables() and key not in EMPTY_MEANS_OFF and MAY_BE_EMPTY.search(value):
                found.append(f"{name}.{key}: {value}")
    return found


def test_an_unset_variable_never_becomes_an_empty_setting():
    # "" is a value: LANGFUSE_HOST="" would replace https://cloud.langfuse.com with nothing.
    assert blanked_settings(MAIN) == []
    assert blanked_settings(LANGFUSE) == []
    fields = {name.upper(): field for name, field in Settings.model_fields.items()}
    assert all(fields[name].default is None for name in EMPTY_MEANS_OFF)


@pytest.mark.parametrize(
    ("value", "blank"),
    [
        ("${LANGFUSE_HOST:-}", True),
        ("${LANGFUSE_HOST-}", True),
        ("${LANGFUSE_HOST}", True),
        ("${LANGFUSE_HOST:-https://cloud.langfuse.com}", False),
        ("${LANGFUSE_HOST:?set LANGFUSE_HOST}", False),
        ("http://langfuse-web:3000", False),
    ],
)
def test_the_blank_check_notices_an_empty_default(value, blank):
    doc = {"services": {"app": {"environment": {"LANGFUSE_HOST": value, "LLM_API_KEY": "${LLM_API_KEY:-}"}}}}
    assert bool(blanked_settings(doc)) is blank


def test_langfuse_images_are_pinned_to_a_release():
    for name in ("langfuse-web", "langfuse-worker"):
        image = services(LANGFUSE)[name]["image"]
        assert re.fullmatch(r"langfuse/langfuse(-worker)?:\d+\.\d+\.\d+", image), image


# --- the image holds the runtime dependencies only

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_name(requirement: str) -> str:
    return canonical(re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0])


def requirement_names(path: Path) -> set[str]:
    """The packages a requirements file names, its `-r` includes followed."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= requirement_names(path.parent / line[3:].strip())
        elif line:
            names.add(project_name(line))
    return names


def pip_installs(dockerfile: str) -> tuple[set[str], list[str]]:
    """What the image's `pip install` lines install: the packages of the requirements files they read
    (traced back to the files COPY put there), and their other arguments."""
    lines = dockerfile.replace("\\\n", " ").splitlines()
    copied: dict[str, str] = {}
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            *sources, target = line.split()[1:]
            if len(sources) == 1:
                copied[target] = sources[0]
    packages: set[str] = set()
    others: list[str] = []
    for line in lines:
        if not (line.startswith("RUN ") and "pip install" in line):
            continue
        args = shlex.split(line[4:])
        words = iter(args[args.index("install") + 1 :])
        for word in words:
            if word in ("-r", "--requirement"):
                packages |= requirement_names(ROOT / copied[next(words)])
            elif not word.startswith("-"):
                others.append(word)
    return packages, others


def test_the_image_installs_no_development_tool():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = {project_name(r) for r in project["optional-dependencies"]["dev"]}
    runtime = {project_name(r) for r in project["dependencies"]}
    installed, others = pip_installs(DOCKERFILE)
    assert runtime <= installed, "the image misses runtime dependencies"
    assert {"pytest", "ruff", "mypy"} <= dev
    assert installed & dev == set()
    assert not any("[" in arg for arg in others), others  # no `.[dev]` either
    # The development install (`make install`) still gets them, from the development lock.
    assert dev <= requirement_names(ROOT / "requirements-dev.lock")
    assert "requirements-dev.lock" in (ROOT / "Makefile").read_text()


def test_the_install_check_follows_the_copied_requirements_file():
    dockerfile = "COPY requirements-dev.lock /tmp/r.txt\nRUN pip install \\\n    -r /tmp/r.txt\n"
    installed, _ = pip_installs(dockerfile)
    assert {"pytest", "ruff", "mypy", "fastapi"} <= installed
